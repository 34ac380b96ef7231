//! Removing messages from a queue through `Take`, each one in the backup before it goes.

use super::{Removal, RemovalResume};
use crate::backend::{Destination, Take};
use crate::ops::backup::Backup;
use crate::ops::journal::{Entry, Journal};
use crate::ops::replay::{BATCH, OnProgress, ReplayError, message_key};
use serde_json::json;
use std::collections::HashMap;
use std::time::Instant;

/// Remove messages from a queue, each written to `backup` (and synced) before it goes:
/// all of them (`ids` empty) or those whose message id or key is listed. Messages not
/// chosen keep their place and order. With a `journal`, each batch's removal is recorded
/// once the broker has answered it, and `resume` carries what an interrupted run left:
/// messages it backed up whose removal went unanswered are removed now without being
/// written a second time, so the backup holds each removed message exactly once.
#[allow(clippy::too_many_arguments)]
pub async fn remove(
    taker: &dyn Take,
    queue: &str,
    ids: &[String],
    force: bool,
    mut backup: Option<&mut Backup>,
    mut journal: Option<&mut Journal>,
    mut resume: RemovalResume,
    progress: OnProgress<'_>,
) -> Result<Removal, ReplayError> {
    let started = Instant::now();
    let mut out = Removal {
        queue: queue.to_string(),
        backup: backup.as_ref().map(|b| b.path().display().to_string()),
        journal: journal.as_ref().map(|j| j.path().display().to_string()),
        ..Removal::default()
    };
    let fresh = resume.unsure() == 0 && resume.found.is_empty();
    let mut session = match taker.take(queue, force).await {
        Ok(s) => s,
        Err(e) => {
            // Nothing was touched: a new run's journal is closed, so that it does not
            // hold up the next one. A resumed run's stays open: it still has work.
            if let (Some(j), true) = (journal.as_deref_mut(), fresh) {
                let end = Entry::End {
                    summary: json!({"removed": 0, "error": e.to_string()}),
                };
                let _ = j.append(&end).and_then(|_| j.sync());
            }
            return Err(e.into());
        }
    };
    let depth = session.depth();
    let restore_to = Destination::Exchange {
        exchange: String::new(),
        routing_key: queue.to_string(),
    };
    let mut wanted: HashMap<&str, bool> = ids
        .iter()
        .map(|i| (i.as_str(), resume.found.contains(i)))
        .collect();
    let result: Result<(), ReplayError> = async {
        loop {
            let all_found = !ids.is_empty() && wanted.values().all(|found| *found);
            if all_found && resume.unsure() == 0 {
                break;
            }
            let batch = session.next(BATCH).await?;
            if batch.is_empty() {
                break;
            }
            out.scanned += batch.len() as u64;
            let mut chosen = Vec::new();
            let mut keys = Vec::new();
            for t in &batch {
                let key = message_key(&t.message);
                if resume.take_unsure(&key) {
                    // In the backup already: the interrupted run's removal of it was
                    // never answered, and here it is, so it was not removed.
                    chosen.push(t.tag);
                    keys.push(key);
                    out.finished += 1;
                    continue;
                }
                if !ids.is_empty() {
                    let id = t.message.properties.message_id.as_deref();
                    let hit = wanted
                        .iter_mut()
                        .find(|(w, _)| **w == key || Some(**w) == id);
                    match hit {
                        Some((_, found)) => *found = true,
                        None => continue,
                    }
                }
                if let Some(b) = backup.as_deref_mut() {
                    b.write(&t.message, &restore_to)?;
                }
                chosen.push(t.tag);
                keys.push(key);
            }
            if let Some(b) = backup.as_deref_mut() {
                crate::fault::step("remove.written").await;
                b.sync()?;
            }
            crate::fault::step("remove.synced").await;
            if let Err(e) = session.ack(&chosen).await {
                out.unsure = chosen.len() as u64;
                return Err(e.into());
            }
            out.removed += chosen.len() as u64;
            crate::fault::step("remove.acked").await;
            if let Some(j) = journal.as_deref_mut() {
                j.append(&Entry::Acked { keys })?;
                j.sync()?;
            }
            progress(out.scanned, depth);
        }
        Ok(())
    }
    .await;
    let released = session.release().await;
    if let Err(e) = result {
        out.stopped = Some(e.to_string());
    }
    if let Err(e) = released {
        out.notes.push(format!(
            "returning the messages not removed failed ({e}); the broker returns them when the channel closes"
        ));
    }
    let left = resume.unsure();
    if left > 0 && out.stopped.is_none() {
        out.notes.push(format!(
            "{left} message(s) the interrupted run had written to the backup were no longer in the queue: its removal of them had gone through"
        ));
    }
    if let (Some(j), None) = (journal, &out.stopped) {
        j.append(&Entry::End {
            summary: json!({"removed": out.removed}),
        })?;
        j.sync()?;
    }
    out.not_found = wanted
        .into_iter()
        .filter(|(_, found)| !found)
        .map(|(w, _)| w.to_string())
        .collect();
    out.not_found.sort();
    out.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(out)
}
