//! The log engine: read the dead-letter topic (streamed when the backend can export) and
//! publish copies of the chosen records; the topic itself is never modified.

use super::advance::{Runs, advance};
use super::outcome::{Outcome, journal_takes, record, sync};
use super::plan::{Plan, choose};
use super::{ReplayError, Replaying, message_key};
use crate::backend::{Backend, BackendError, Destination, PeekFrom, Publish};
use crate::model::Message;
use crate::ops::scan::{ScanOptions, read_all};

pub(super) async fn replay_log(
    backend: &dyn Backend,
    publisher: &dyn Publish,
    detail: &crate::model::QueueDetail,
    run: &mut Replaying<'_>,
) -> Result<(), ReplayError> {
    let plan: &Plan = run.plan;
    let total = detail.summary.messages.unwrap_or(0);
    let name = &detail.summary.name;
    let mut runs = Runs::default();
    if let Some(exporter) = backend.exporter() {
        // Stream the log in batches while replaying them: memory stays at a few batches.
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Message>>(4);
        let read = exporter.export(name, None, &PeekFrom::Start, plan.batch, tx);
        let send = async {
            // Owning the receiver drops it when this stops early, which ends the export
            // instead of leaving it blocked on a full channel.
            let mut rx = rx;
            while let Some(page) = rx.recv().await {
                replay_log_page(publisher, page, run, total, &mut runs).await?;
                if run.report.stopped.is_some() {
                    break;
                }
            }
            Ok::<(), ReplayError>(())
        };
        let (read, sent) = tokio::join!(read, send);
        sent?;
        read?;
    } else {
        let mut pages: Vec<Vec<Message>> = Vec::new();
        let mut notes = Vec::new();
        let scan = ScanOptions {
            page_size: plan.batch,
            ..ScanOptions::default()
        };
        read_all(
            backend,
            detail,
            &scan,
            |page| {
                pages.push(page.to_vec());
                Ok::<(), BackendError>(())
            },
            |n| notes.push(n.to_string()),
        )
        .await?;
        for n in notes {
            run.report.note(n);
        }
        for page in pages {
            replay_log_page(publisher, page, run, total, &mut runs).await?;
            if run.report.stopped.is_some() {
                break;
            }
        }
    }
    let report = &mut run.report;
    if plan.commit_group.is_some() || plan.delete_records {
        advance(backend, name, plan, &runs, report).await;
    }
    if !plan.delete_records {
        report.note(format!(
            "\"{name}\" is a log: its records stay where they are (replaying never modifies it)"
        ));
    }
    Ok(())
}

async fn replay_log_page(
    publisher: &dyn Publish,
    page: Vec<Message>,
    run: &mut Replaying<'_>,
    total: u64,
    runs: &mut Runs,
) -> Result<(), ReplayError> {
    let (plan, progress) = (run.plan, run.progress);
    let (journal, report) = (&mut run.journal, &mut run.report);
    let (resume, budget) = (&mut run.resume, &mut run.budget);
    report.scanned += page.len() as u64;
    let mut sending = Vec::new();
    // Each record in order: replayed before (Some(None)), sent as `sending[i]` (Some(Some(i))),
    // or left alone (None); the runs of replayed records are known once confirms are in.
    let mut fate = Vec::with_capacity(page.len());
    for m in page {
        let key = message_key(&m);
        let place = (m.partition, m.offset);
        if resume.take_confirmed(&key) {
            report.already_replayed += 1;
            fate.push((place, Some(None)));
            continue;
        }
        if let Some((dest, copy)) = choose(&m, &key, plan, true, None, budget, report) {
            fate.push((place, Some(Some(sending.len()))));
            sending.push((key, dest, copy, m));
        } else {
            fate.push((place, None));
        }
    }
    if sending.is_empty() {
        for ((p, o), f) in fate {
            runs.record(p, o, f.is_some());
        }
        progress(report.scanned, total);
        return Ok(());
    }
    journal_takes(
        journal,
        sending.iter().map(|(k, d, _, m)| (k.as_str(), d, m)),
    )?;
    let items: Vec<(Destination, Message)> = sending
        .iter()
        .map(|(_, d, c, _)| (d.clone(), c.clone()))
        .collect();
    crate::fault::step("replay.journalled").await;
    let results = publisher.publish_batch(&items).await;
    crate::fault::step("replay.published").await;
    let mut confirmed = vec![false; sending.len()];
    let mut journal_failed = None;
    for (((key, dest, _, original), r), ok) in sending.iter().zip(results).zip(&mut confirmed) {
        match record(
            journal,
            report,
            (key, dest, original),
            r,
            "dead-letter topic",
            &mut journal_failed,
        ) {
            Outcome::Confirmed => *ok = true,
            Outcome::Failed => {}
            Outcome::Unknown(e) => {
                report.stopped.get_or_insert_with(|| e.to_string());
            }
        }
    }
    for ((p, o), f) in fate {
        let replayed = match f {
            Some(None) => true,
            Some(Some(i)) => confirmed[i],
            None => false,
        };
        runs.record(p, o, replayed);
    }
    sync(journal, &mut journal_failed);
    crate::fault::step("replay.confirmed").await;
    progress(report.scanned, total);
    match journal_failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
