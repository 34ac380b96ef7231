//! A purge or delete as both front ends run it: refused while an earlier run on the queue
//! is unfinished, its backup and journal started (or an interrupted run's reopened), the
//! removal, and its line in the audit log.

use super::{Removal, RemovalOptions, RemovalResume, remove};
use crate::backend::{Backend, Take};
use crate::format::text::shell_word;
use crate::ops::audit::{self, Audited};
use crate::ops::backup::{Backup, backup_keys};
use crate::ops::journal::{self, Entry, Journal};
use crate::ops::replay::{OnProgress, ReplayError};
use crate::ops::store::unique_id;
use serde_json::Value;
use std::path::Path;

/// The backend's way of taking messages off a queue, which `action` needs.
pub fn taker<'a>(backend: &'a dyn Backend, action: &str) -> Result<&'a dyn Take, ReplayError> {
    backend.taker().ok_or_else(|| {
        ReplayError::Invalid(format!(
            "the {} backend cannot {action} (its topics are logs; nothing is removed from them)",
            backend.info().kind.as_str()
        ))
    })
}

/// Refuse a new purge or delete of `queue` while an earlier one on `target` is unfinished:
/// it may have backed up messages whose removal the broker never answered, which a new run
/// would back up a second time.
pub fn check_no_unfinished_removal(
    target: &str,
    action: &str,
    queue: &str,
) -> Result<(), ReplayError> {
    match journal::unfinished_removals_of(target, queue)?.first() {
        Some((path, _)) => Err(ReplayError::Invalid(format!(
            "an earlier {action} of \"{queue}\" on {target} did not finish ({}): finish it first with: mqscope {action} {} --resume (nothing is backed up or removed twice)",
            path.display(),
            shell_word(queue)
        ))),
        None => Ok(()),
    }
}

/// Start a purge or delete of `queue` with a backup (at `backup_path`, or in the state
/// directory) and a journal of what the broker confirms removing: together they let an
/// interrupted run be finished without a message in two places. Refused while an earlier
/// run on the same queue is unfinished: it may have backed up messages whose removal the
/// broker never answered, which a new run would back up a second time.
pub fn start_removal(
    target: &str,
    queue: &str,
    action: &str,
    ids: &[String],
    force: bool,
    backup_path: Option<&std::path::Path>,
) -> Result<(Backup, Journal), ReplayError> {
    check_no_unfinished_removal(target, action, queue)?;
    let backup = Backup::create(queue, target, backup_path)?;
    let id = unique_id();
    let mut j = Journal::create_removal(&id)?;
    let opts = RemovalOptions {
        action: action.to_string(),
        ids: ids.to_vec(),
        force,
        backup: backup.path().display().to_string(),
    };
    j.append(&Entry::Begin {
        id: id.clone(),
        time: crate::model::time::rfc3339(&chrono::Utc::now()),
        target: target.to_string(),
        source: queue.to_string(),
        options: serde_json::to_value(&opts).unwrap_or(Value::Null),
    })?;
    j.sync()?;
    Ok((backup, j))
}

/// The journal, backup and leftovers of an interrupted purge or delete of `queue`, and
/// the choice of messages it was made with.
pub struct Resumed {
    pub opts: RemovalOptions,
    pub journal: Journal,
    pub backup: Backup,
    pub resume: RemovalResume,
}

/// The unfinished `action` of `queue` on `target`, to finish it.
pub fn resume(target: &str, action: &str, queue: &str) -> Result<Resumed, ReplayError> {
    let (path, begin) = journal::unfinished_removals_of(target, queue)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ReplayError::Invalid(format!(
                "no unfinished purge or delete of \"{queue}\" on {target}"
            ))
        })?;
    let not_removal = || format!("{} does not start like a removal journal", path.display());
    let Entry::Begin { options, .. } = begin else {
        return Err(ReplayError::Invalid(not_removal()));
    };
    let opts: RemovalOptions = serde_json::from_value(options)
        .map_err(|e| ReplayError::Invalid(format!("{}: {e}", not_removal())))?;
    if opts.action != action {
        return Err(ReplayError::Invalid(format!(
            "the unfinished run on \"{queue}\" is a {}: finish it with mqscope {} {} --resume",
            opts.action,
            opts.action,
            shell_word(queue)
        )));
    }
    let backup_path = Path::new(&opts.backup);
    let keys = backup_keys(backup_path)?;
    let entries = journal::load(&path)?;
    Ok(Resumed {
        resume: RemovalResume::new(&keys, &entries),
        backup: Backup::open(backup_path, target)?,
        journal: Journal::open(&path)?,
        opts,
    })
}

/// Where the removed messages go.
pub enum Keep<'a> {
    /// Nowhere (`--no-backup`): all of them are purged by the broker, or the chosen ones
    /// removed.
    Nothing,
    /// A new backup, at the path or in the state directory, with a journal.
    Backup(Option<&'a Path>),
    /// The backup and journal of an interrupted run, which this one finishes.
    Resumed(Box<Resumed>),
}

/// A purge or delete: of all messages (`ids` empty) or of those whose message id or key is
/// listed (a resumed run's own choice holds instead).
pub struct Removing<'a> {
    pub action: &'a str,
    pub queue: &'a str,
    pub ids: &'a [String],
    pub force: bool,
    pub keep: Keep<'a>,
}

/// What a purge or delete did, the backup file it wrote to (removed again when it holds
/// nothing, and then not in the removal), and its audit line.
pub struct Removed {
    pub removal: Audited<Result<Removal, ReplayError>>,
    pub backup: Option<String>,
}

/// Run a purge or delete and write its audit line (for `profile`, if one was used). An
/// error before anything was removed or written (no backup could be started, the broker's
/// purge failed) comes back as such, with no audit line.
pub async fn run(
    backend: &dyn Backend,
    profile: Option<&str>,
    how: Removing<'_>,
    progress: OnProgress<'_>,
) -> Result<Removed, ReplayError> {
    let Removing {
        action,
        queue,
        ids,
        force,
        keep,
    } = how;
    let taker = taker(backend, action)?;
    let target = backend.info().target;
    let (ids, force): (Vec<String>, bool) = match &keep {
        Keep::Resumed(r) => (r.opts.ids.clone(), r.opts.force),
        _ => (ids.to_vec(), force),
    };
    let ids = ids.as_slice();
    let mut planned_backup: Option<String> = None;
    let result: Result<Removal, ReplayError> = match keep {
        Keep::Nothing if ids.is_empty() => {
            let purger = backend.purger().ok_or_else(|| {
                ReplayError::Invalid(format!(
                    "the {} backend cannot purge",
                    backend.info().kind.as_str()
                ))
            })?;
            let started = std::time::Instant::now();
            let n = purger.purge(queue).await?;
            Ok(Removal {
                queue: queue.to_string(),
                removed: n,
                scanned: n,
                notes: vec!["--no-backup: purged by the broker, nothing was written".into()],
                elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                ..Removal::default()
            })
        }
        Keep::Nothing => {
            remove(
                taker,
                queue,
                ids,
                force,
                None,
                None,
                RemovalResume::default(),
                progress,
            )
            .await
        }
        Keep::Resumed(r) => {
            let r = *r;
            planned_backup = Some(r.backup.path().display().to_string());
            let into = (r.backup, r.journal, r.resume);
            backed_up(taker, queue, ids, force, into, progress).await
        }
        Keep::Backup(path) => {
            let (backup, j) = start_removal(&target, queue, action, ids, force, path)?;
            planned_backup = Some(backup.path().display().to_string());
            let into = (backup, j, RemovalResume::default());
            backed_up(taker, queue, ids, force, into, progress).await
        }
    };
    // A backup that holds nothing (nothing matched, or the removal failed before its
    // first message) is not kept, nor offered for a restore.
    let empty_backup = |path: &str| {
        let p = Path::new(path);
        std::fs::metadata(p).is_ok_and(|m| m.len() == 0) && std::fs::remove_file(p).is_ok()
    };
    let result = result.map(|mut r| {
        if r.backup.as_deref().is_some_and(empty_backup) {
            r.backup = None;
        }
        r
    });
    if let (Err(_), Some(path)) = (&result, &planned_backup) {
        empty_backup(path);
    }
    let audit = match &result {
        Err(e) => audit::record(&target, profile, action, queue, |a| {
            a.result = format!("error: {e}");
        }),
        Ok(r) => audit::record(&target, profile, action, queue, |a| {
            a.count = r.removed;
            a.backup = r.backup.clone();
            a.journal = r.journal.clone();
            a.result = match &r.stopped {
                Some(s) => format!("stopped: {s}"),
                None => "ok".into(),
            };
        }),
    };
    Ok(Removed {
        removal: Audited {
            outcome: result,
            audit,
        },
        backup: planned_backup,
    })
}

/// Remove with a backup and a journal of what the broker confirmed removing: together they
/// let an interrupted run be finished without a message in two places.
async fn backed_up(
    taker: &dyn Take,
    queue: &str,
    ids: &[String],
    force: bool,
    (mut backup, mut journal, leftovers): (Backup, Journal, RemovalResume),
    progress: OnProgress<'_>,
) -> Result<Removal, ReplayError> {
    remove(
        taker,
        queue,
        ids,
        force,
        Some(&mut backup),
        Some(&mut journal),
        leftovers,
        progress,
    )
    .await
}
