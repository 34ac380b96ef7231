//! The queue engine: take dead letters from a queue broker in batches (the `Take`
//! capability), publish their copies with confirms, and ack each original only once its
//! copy is confirmed, with two batches in flight.

use super::outcome::{Outcome, journal_takes, record, sync, write};
use super::plan::choose;
use super::report::Report;
use super::{ReplayError, Replaying, message_key};
use crate::backend::{Destination, Publish, Take, TakeSession, Taken};
use crate::model::Message;
use crate::model::topology::Topology;
use crate::ops::journal::{Entry, Journal};

pub(super) async fn replay_queue(
    taker: &dyn Take,
    publisher: &dyn Publish,
    source: &str,
    topology: Option<&Topology>,
    run: &mut Replaying<'_>,
) -> Result<(), ReplayError> {
    let mut session = taker.take(source, run.plan.force).await?;
    let depth = session.depth();
    let outcome = replay_queue_batches(session.as_mut(), publisher, topology, run, depth).await;
    let report = &mut run.report;
    let unresolved = run.resume.unresolved();
    if unresolved > 0 && outcome.is_ok() {
        report.note(format!(
            "{unresolved} messages the interrupted run had replayed were no longer in the queue: it had removed them before it stopped"
        ));
    }
    // Whatever happened, everything not acked goes back to its place.
    let released = session.release().await;
    match (outcome, released) {
        (Err(e), _) => {
            report.stopped = Some(e.to_string());
            Ok(())
        }
        (Ok(()), Err(e)) => {
            report.note(format!(
                "returning the messages not replayed failed ({e}); the broker returns them when the channel closes"
            ));
            Ok(())
        }
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// One batch sent and waiting for its confirms.
struct InFlight {
    /// Originals already replayed by an interrupted run: acked without publishing.
    ack_only: Vec<(u64, String)>,
    sent: Vec<(u64, String, Destination, Message)>,
    confirms: Vec<crate::backend::PendingConfirm>,
}

/// Take the next batch, choose and journal what goes where, and send the copies without
/// waiting for their confirms; None at the end of the queue.
async fn send_next(
    session: &mut dyn TakeSession,
    publisher: &dyn Publish,
    topology: Option<&Topology>,
    run: &mut Replaying<'_>,
) -> Result<Option<InFlight>, ReplayError> {
    let plan = run.plan;
    if plan.ids.is_empty() && plan.filter.is_none() && run.budget == Some(0) {
        return Ok(None);
    }
    let batch: Vec<Taken> = session.next(plan.batch).await?;
    if batch.is_empty() {
        return Ok(None);
    }
    run.report.scanned += batch.len() as u64;
    let mut ack_only = Vec::new();
    let mut sent = Vec::new();
    let mut items = Vec::new();
    for t in batch {
        let key = message_key(&t.message);
        if run.resume.take_confirmed(&key) {
            ack_only.push((t.tag, key));
            continue;
        }
        if let Some((dest, copy)) = choose(
            &t.message,
            &key,
            plan,
            false,
            topology,
            &mut run.budget,
            &mut run.report,
        ) {
            items.push((dest.clone(), copy));
            sent.push((t.tag, key, dest, t.message));
        }
    }
    journal_takes(
        &mut run.journal,
        sent.iter().map(|(_, k, d, m)| (k.as_str(), d, m)),
    )?;
    crate::fault::step("replay.journalled").await;
    let confirms = if items.is_empty() {
        Vec::new()
    } else {
        publisher.send_batch(&items).await
    };
    crate::fault::step("replay.sent").await;
    Ok(Some(InFlight {
        ack_only,
        sent,
        confirms,
    }))
}

/// Wait for a batch's confirms, record them, and only then ack the originals. A journal
/// that cannot be written (a full disk) does not hold back the acks of copies the broker
/// confirmed: each of those originals would otherwise stay beside its copy. The journal,
/// cut back to its last sync, still names them as taken, and a resume finds the copies.
async fn settle(
    b: InFlight,
    session: &mut dyn TakeSession,
    journal: &mut Option<&mut Journal>,
    report: &mut Report,
) -> Result<(), ReplayError> {
    let mut to_ack: Vec<u64> = b.ack_only.iter().map(|(t, _)| *t).collect();
    let mut acked_keys: Vec<String> = b.ack_only.into_iter().map(|(_, k)| k).collect();
    let ack_only = acked_keys.len() as u64;
    let mut lost = None;
    let mut journal_failed = None;
    for ((tag, key, dest, original), confirm) in b.sent.iter().zip(b.confirms) {
        let result = confirm.await;
        let outcome = record(
            journal,
            report,
            (key, dest, original),
            result,
            "dead-letter queue",
            &mut journal_failed,
        );
        match outcome {
            Outcome::Confirmed => {
                to_ack.push(*tag);
                acked_keys.push(key.clone());
            }
            Outcome::Failed => {}
            Outcome::Unknown(e) => {
                lost.get_or_insert(e);
            }
        }
    }
    sync(journal, &mut journal_failed);
    crate::fault::step("replay.confirmed").await;
    // Only now, with every copy confirmed (and recorded, if the disk let us), are the
    // originals removed. The ack returns once the broker has it (a round trip on the
    // channel), so a line saying so is never a hope.
    if let Err(e) = session.ack(&to_ack).await {
        report.unsure += to_ack.len() as u64 - ack_only;
        return Err(e.into());
    }
    report.already_replayed += ack_only;
    *report.removed.get_or_insert(0) += to_ack.len() as u64 - ack_only;
    crate::fault::step("replay.acked").await;
    // Synced at once: a resume removes, for each confirmed copy not recorded as acked, one
    // message with the same key, so the time in which the broker has removed originals
    // the journal does not know of (when a twin, a dead letter published twice, would be
    // taken for one) is kept to the moment between the ack's answer and this write.
    write(
        journal,
        &Entry::Acked { keys: acked_keys },
        &mut journal_failed,
    );
    sync(journal, &mut journal_failed);
    crate::fault::step("replay.acked_journalled").await;
    if let Some(e) = journal_failed {
        return Err(e.into());
    }
    match lost {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Two batches in flight: while the broker confirms one, the next is taken, journalled
/// and sent (after the first's sends, so the order is kept). An interruption leaves the
/// second batch journalled as in flight, which a resume resolves.
async fn replay_queue_batches(
    session: &mut dyn TakeSession,
    publisher: &dyn Publish,
    topology: Option<&Topology>,
    run: &mut Replaying<'_>,
    depth: u64,
) -> Result<(), ReplayError> {
    let mut in_flight = send_next(session, publisher, topology, run).await?;
    while let Some(current) = in_flight.take() {
        let next = send_next(session, publisher, topology, run).await;
        let (journal, report) = (&mut run.journal, &mut run.report);
        if let Err(e) = settle(current, session, journal, report).await {
            // The next batch is out already: settle it as well, so that no original
            // whose copy the broker confirmed stays behind beside it.
            if let Ok(Some(next)) = next {
                let _ = settle(next, session, journal, report).await;
            }
            return Err(e);
        }
        (run.progress)(run.report.scanned, depth);
        in_flight = next?;
    }
    Ok(())
}
