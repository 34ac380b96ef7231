//! What became of each copy a replay sent, as both engines record it: in the report, and in
//! the journal before and after the broker answers.

use super::ReplayError;
use super::report::{Report, group, item};
use crate::backend::{BackendError, Destination};
use crate::format::destination::destination_json;
use crate::format::record::message_record;
use crate::model::Message;
use crate::model::correlation::Extractor;
use crate::ops::journal::{Entry, Journal, JournalError};

/// Whether a failed publish may still have reached the broker (the connection went away
/// before the confirm came): only refusals the broker spelt out are definite.
pub fn outcome_unknown(e: &BackendError) -> bool {
    match e {
        BackendError::Unroutable(_)
        | BackendError::ExchangeNotFound(_)
        | BackendError::QueueNotFound(_)
        | BackendError::InvalidArgument(_)
        | BackendError::Refused(_)
        | BackendError::Unsupported { .. }
        | BackendError::Auth { .. }
        | BackendError::NotSent(_)
        | BackendError::Behind { .. } => false,
        BackendError::Broker(text) => !text.contains("(nack)"),
        BackendError::Unreachable { .. }
        | BackendError::Timeout { .. }
        | BackendError::Unconfirmed(_) => true,
    }
}

/// What became of one sent copy, recorded in the journal and the report.
pub(super) enum Outcome {
    Confirmed,
    Failed,
    /// The broker may or may not have it: neither confirmed nor failed, so a resumed run
    /// looks for it at its destination before sending it again.
    Unknown(BackendError),
}

/// Append `e` unless an earlier write failed; the first failure is kept in `failed`.
pub(super) fn write(
    journal: &mut Option<&mut Journal>,
    e: &Entry,
    failed: &mut Option<JournalError>,
) {
    if let (Some(j), None) = (journal.as_deref_mut(), failed.as_ref())
        && let Err(err) = j.append(e)
    {
        *failed = Some(err);
    }
}

/// Sync the journal unless an earlier write failed; the first failure is kept in `failed`.
pub(super) fn sync(journal: &mut Option<&mut Journal>, failed: &mut Option<JournalError>) {
    if let (Some(j), None) = (journal.as_deref_mut(), failed.as_ref())
        && let Err(err) = j.sync()
    {
        *failed = Some(err);
    }
}

/// Count one copy's outcome in the report and the journal. The report counts what the
/// broker said even when the journal could not be written (`failed` then says why).
pub(super) fn record(
    journal: &mut Option<&mut Journal>,
    report: &mut Report,
    (key, dest, original): (&str, &Destination, &Message),
    result: crate::backend::Result<crate::backend::PublishReceipt>,
    stays_in: &str,
    failed: &mut Option<JournalError>,
) -> Outcome {
    match result {
        Err(e) if outcome_unknown(&e) => Outcome::Unknown(e),
        Ok(_) => {
            let e = Entry::Confirmed {
                key: key.to_string(),
            };
            write(journal, &e, failed);
            report.replayed += 1;
            *report.destinations.entry(group(dest)).or_default() += 1;
            Outcome::Confirmed
        }
        Err(e) => {
            let entry = Entry::Failed {
                key: key.to_string(),
                error: e.to_string(),
            };
            write(journal, &entry, failed);
            report.failed.push(item(
                original,
                key,
                Some(dest),
                format!("{e}; the original stays in the {stays_in}"),
            ));
            Outcome::Failed
        }
    }
}

/// Journal each message before it is touched, and sync.
pub(super) fn journal_takes<'a>(
    journal: &mut Option<&mut Journal>,
    takes: impl Iterator<Item = (&'a str, &'a Destination, &'a Message)>,
) -> Result<(), ReplayError> {
    if let Some(j) = journal.as_deref_mut() {
        for (key, dest, original) in takes {
            j.append(&Entry::Take {
                key: key.to_string(),
                position: original.position,
                dest: destination_json(dest),
                record: message_record(original, &Extractor::default()),
            })?;
        }
        j.sync()?;
    }
    Ok(())
}
