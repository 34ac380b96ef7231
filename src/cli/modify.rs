//! The subcommands that change a broker: `replay`, `purge`, `delete`. Each refuses in
//! read-only mode, asks before it acts (unless `--yes`) and prints what was done. The
//! backup or journal written before anything is removed, and the line in the audit log,
//! are the work of `ops::replay::run` and `ops::remove::run`, which the terminal UI runs too.

use crate::backend::Backend;
use crate::cli::{DeleteArgs, PurgeArgs, RemovalArgs, ReplayArgs};
use crate::config::Resolved;
use crate::format::text::shell_word as sh;
use crate::ops::audit::Audited;
use crate::ops::remove::{self, Keep};
use crate::ops::replay::{self, Prepared, ReplayOptions, Report};
use anyhow::{Context, Result, anyhow, bail};
use std::io::{BufRead, IsTerminal, Write};

/// Refuse a modifying action in read-only mode, saying which.
pub fn refuse_read_only(resolved: &Resolved, what: &str) -> Result<()> {
    if resolved.read_only {
        bail!("refused: read-only mode (--read-only or the profile's read_only) does not {what}");
    }
    Ok(())
}

/// Ask on the terminal; without one, refuse unless `--yes` was given.
fn confirm(question: &str, expect: Option<&str>, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("not a terminal, so nothing was asked and nothing was done: add --yes to go ahead");
    }
    let mut err = std::io::stderr();
    match expect {
        Some(name) => write!(
            err,
            "{question}\nType the queue name ({name}) to go ahead: "
        )?,
        None => write!(err, "{question} [y/N] ")?,
    }
    err.flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let answer = line.trim_end_matches(['\r', '\n']);
    let ok = match expect {
        Some(name) => answer == name,
        None => matches!(answer.trim(), "y" | "Y" | "yes"),
    };
    if !ok {
        bail!("cancelled: nothing was changed");
    }
    Ok(())
}

/// The action stands without its audit line; the user is told the line is missing.
fn warn_unaudited<T>(done: Audited<T>) -> T {
    if let Err(err) = &done.audit {
        eprintln!("warning: could not write the audit log: {err}");
    }
    done.outcome
}

fn progress_printer(enabled: bool) -> impl Fn(u64, u64) + Send + Sync {
    move |done, total| {
        if enabled {
            eprint!("\r{done}/{total} messages");
        }
    }
}

pub async fn replay(
    backend: &dyn Backend,
    resolved: &Resolved,
    args: &ReplayArgs,
    out: &mut dyn Write,
) -> Result<()> {
    if !args.dry_run {
        refuse_read_only(resolved, "replay")?;
    }
    if let Some(which) = &args.abandon {
        return abandon(backend, resolved, args, which, out);
    }
    let target = backend.info().target;
    // Where the journal and options come from: a new replay, or an unfinished one.
    let prepared = match &args.resume {
        Some(which) => Prepared::resume(&target, which, args.queue.as_deref())?,
        None => {
            let source = args
                .queue
                .clone()
                .ok_or_else(|| anyhow!("name the dead-letter queue or topic to replay"))?;
            if !args.dry_run {
                replay::check_no_unfinished_replay(&target, &source)?;
            }
            let opts = ReplayOptions {
                to: args.to.clone(),
                routing_key: args.routing_key.clone(),
                via: Some(
                    match args.via {
                        replay::Via::Auto => "auto",
                        replay::Via::Exchange => "exchange",
                        replay::Via::Queue => "queue",
                    }
                    .into(),
                ),
                filter: args.filter.clone(),
                ids: args.ids.clone(),
                limit: args.limit,
                max_replays: Some(args.max_replays),
                force: args.force,
                keep_partition: args.keep_partition,
                batch: Some(args.batch),
                commit_group: args.commit_group.clone(),
                delete_records: args.delete_records,
            };
            Prepared::new(&source, opts)?
        }
    };
    // A filter that looks inside bodies reads them as `peek --json` shows them decoded.
    let prepared = if prepared
        .plan
        .filter
        .as_ref()
        .is_some_and(|f| f.reads_inside())
    {
        prepared.decoding(std::sync::Arc::new(crate::config::decoder(resolved)?))
    } else {
        prepared
    };
    let (source, plan) = (&prepared.source, &prepared.plan);
    if args.dry_run {
        let report = replay::dry_run(backend, source, plan).await?;
        return print_report(&report, args.json, out);
    }
    if backend.publisher().is_none() {
        bail!(
            "the {} backend cannot publish, so it cannot replay",
            backend.info().kind.as_str()
        );
    }
    if !args.yes {
        let preview = replay::dry_run(backend, source, plan).await?;
        print_report(&preview, false, &mut std::io::stderr())?;
        confirm(
            &format!(
                "Replay {} message(s) from \"{source}\"{}?",
                preview.replayed,
                if prepared.resuming.is_some() {
                    " (resuming)"
                } else {
                    ""
                }
            ),
            None,
            false,
        )?;
    }
    let (mut journal, resume) = replay::start(&target, &prepared)?;
    let show = !args.json && std::io::stderr().is_terminal();
    let progress = progress_printer(show);
    let journal_shown = journal.path().display().to_string();
    // Ctrl-C is taken over only now, after the question (a blocking read of the terminal
    // that it must still interrupt): the replay stops, the journal is written out, and
    // what the broker had delivered and not seen acked goes back when mqscope exits.
    let profile = resolved.profile_name.as_deref();
    let done = tokio::select! {
        r = replay::run(backend, &prepared, &mut journal, resume, profile, &progress) => r,
        _ = tokio::signal::ctrl_c() => {
            let _ = journal.sync();
            eprintln!(
                "\nmqscope: interrupted: what was replayed is in the journal; messages not yet removed from the dead-letter queue go back to it. Finish with: mqscope replay --resume {journal_shown}"
            );
            std::process::exit(130);
        }
    };
    if show {
        eprintln!();
    }
    let report = match warn_unaudited(done) {
        Ok(r) => r,
        Err(e) => {
            return Err(anyhow!(e).context(format!(
                "replay of \"{source}\" stopped; nothing unconfirmed was removed. Go on with: mqscope replay --resume {journal_shown}"
            )));
        }
    };
    print_report(&report, args.json, out)?;
    if let Some(stopped) = &report.stopped {
        let unsure = match report.unsure {
            0 => String::new(),
            n => format!(
                "; {n} of them are at their destination and may also still be in \"{source}\" (the broker did not answer their removal): the resume removes those without sending them again"
            ),
        };
        bail!(
            "replay stopped: {stopped}. {} cop(ies) confirmed at their destination in this run{unsure}; every other message is still in \"{source}\". Go on with: mqscope replay --resume {journal_shown}",
            report.replayed
        );
    }
    if !report.failed.is_empty() {
        bail!(
            "{} message(s) could not be replayed and stay in \"{source}\" (first: {})",
            report.failed.len(),
            report.failed[0].reason
        );
    }
    if let Some(e) = &report.advance_failed {
        bail!(
            "every chosen record was replayed, but moving past them in \"{source}\" failed: {e}. Retry that (nothing is sent twice) with: mqscope replay --resume {journal_shown}"
        );
    }
    Ok(())
}

/// `replay --abandon`: the named journal, or the newest unfinished one (of QUEUE, if
/// given), is set aside so that a new replay of its queue is allowed.
fn abandon(
    backend: &dyn Backend,
    resolved: &Resolved,
    args: &ReplayArgs,
    which: &str,
    out: &mut dyn Write,
) -> Result<()> {
    refuse_read_only(resolved, "abandon a replay")?;
    let profile = resolved.profile_name.as_deref();
    let (source, kept) = warn_unaudited(replay::abandon(
        &backend.info().target,
        profile,
        which,
        args.queue.as_deref(),
    )?);
    writeln!(
        out,
        "abandoned the replay of \"{source}\"; its journal is kept as {}",
        kept.display()
    )?;
    Ok(())
}

fn print_report(r: &Report, json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        serde_json::to_writer(&mut *out, r)?;
        writeln!(out)?;
        return Ok(());
    }
    let verb = if r.dry_run {
        "would replay"
    } else {
        "replayed"
    };
    writeln!(
        out,
        "{} {verb} {} of {} message(s) looked at in {} ms",
        r.source, r.replayed, r.scanned, r.elapsed_ms
    )?;
    for (dest, n) in &r.destinations {
        writeln!(out, "  {n:>7} → {dest}")?;
    }
    if let Some(removed) = r.removed
        && removed != r.replayed
    {
        writeln!(
            out,
            "  {removed:>7} originals removed from the queue (the others' removal: {} unanswered)",
            r.unsure
        )?;
    }
    if r.already_replayed > 0 {
        writeln!(
            out,
            "  {:>7} replayed by the interrupted run, removed from the queue now",
            r.already_replayed
        )?;
    }
    if r.not_selected > 0 {
        writeln!(
            out,
            "  {:>7} not chosen (--ids, --filter, --limit): left in place",
            r.not_selected
        )?;
    }
    for (label, items) in [("skipped", &r.skipped), ("FAILED", &r.failed)] {
        if items.is_empty() {
            continue;
        }
        writeln!(out, "  {:>7} {label}:", items.len())?;
        for i in items.iter().take(20) {
            let id = i.message_id.as_deref().unwrap_or(&i.key);
            writeln!(out, "          #{} {id}: {}", i.position, i.reason)?;
        }
        if items.len() > 20 {
            writeln!(
                out,
                "          … and {} more (--json lists all)",
                items.len() - 20
            )?;
        }
    }
    for n in &r.notes {
        writeln!(out, "  note: {n}")?;
    }
    for a in &r.advanced {
        let from = a.from.map_or_else(|| "none".to_string(), |f| f.to_string());
        match a.action {
            "commit" => writeln!(
                out,
                "  partition {}: group committed {from} → {}",
                a.partition, a.to
            )?,
            _ => writeln!(
                out,
                "  partition {}: records below {} deleted",
                a.partition, a.to
            )?,
        }
    }
    if let Some(j) = &r.journal {
        writeln!(out, "  journal: {j}")?;
    }
    Ok(())
}

/// The command that puts a backup back on the broker it came from: the same profile and
/// URL (without its password, which is given as before). Without them, `publish` would
/// go to the default target, which may be another broker or the demo.
fn restore_command(resolved: &Resolved, backend: &dyn Backend, backup: &str) -> String {
    let profile = resolved
        .profile_name
        .as_deref()
        .map(|p| format!(" --profile {}", sh(p)))
        .unwrap_or_default();
    format!(
        "mqscope{profile} --url {} publish --from {}",
        sh(&backend.info().target),
        sh(backup)
    )
}

async fn remove(
    backend: &dyn Backend,
    resolved: &Resolved,
    action: &str,
    queue: &str,
    ids: &[String],
    how: &RemovalArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let RemovalArgs {
        yes,
        no_backup,
        ref backup,
        force,
        resume,
        json,
    } = *how;
    let backup_path = backup.as_deref();
    refuse_read_only(resolved, action)?;
    remove::taker(backend, action)?;
    let target = backend.info().target;
    let detail = backend.describe_queue(queue).await?;
    if detail.summary.kind.is_log() {
        bail!(
            "\"{queue}\" is a {}: nothing can be removed from a log",
            detail.summary.kind.as_str()
        );
    }
    let resumed = if resume {
        Some(remove::resume(&target, action, queue)?)
    } else {
        // Asked before the question, so that nobody confirms a run that is then refused.
        remove::check_no_unfinished_removal(&target, action, queue)?;
        None
    };
    // A resumed run keeps the choice it was made with.
    let resumed_choice = resumed.as_ref().map(|r| (r.opts.ids.clone(), r.opts.force));
    let (ids, force) = match &resumed_choice {
        Some((ids, force)) => (ids.as_slice(), *force),
        None => (ids, force),
    };
    let count = detail.summary.messages.unwrap_or(0);
    let what = match (&resumed, ids.is_empty()) {
        (Some(r), true) => format!(
            "finish: the {} message(s) backed up before whose removal went unanswered, then all the others",
            r.resume.unsure()
        ),
        (Some(r), false) => format!(
            "finish: the {} message(s) backed up before whose removal went unanswered, then those of the {} chosen still to find",
            r.resume.unsure(),
            ids.len()
        ),
        (None, true) => format!("all {count} message(s)"),
        (None, false) => format!("{} chosen message(s)", ids.len()),
    };
    let backup_note = match (&resumed, no_backup) {
        (Some(r), _) => format!("writing them to {}", r.backup.path().display()),
        (None, true) => "WITHOUT a backup: they cannot be restored".to_string(),
        (None, false) => "after writing them to a backup file".to_string(),
    };
    confirm(
        &format!("{action} {what} from \"{queue}\" on {target}, {backup_note}."),
        Some(queue),
        yes,
    )?;
    let show = !json && std::io::stderr().is_terminal();
    let progress = progress_printer(show);
    let keep = match (resumed, no_backup) {
        (_, true) => Keep::Nothing,
        (Some(r), false) => Keep::Resumed(Box::new(r)),
        (None, false) => Keep::Backup(backup_path),
    };
    let how = remove::Removing {
        action,
        queue,
        ids,
        force,
        keep,
    };
    let profile = resolved.profile_name.as_deref();
    let done = remove::run(backend, profile, how, &progress).await?;
    if show {
        eprintln!();
    }
    let r = warn_unaudited(done.removal)?;
    if json {
        serde_json::to_writer(&mut *out, &r)?;
        writeln!(out)?;
    } else {
        writeln!(out, "removed {} message(s) from \"{queue}\"", r.removed)?;
        if r.finished > 0 {
            writeln!(
                out,
                "  {} of them backed up by the interrupted run, removed now",
                r.finished
            )?;
        }
        // The backup is offered only when it holds what was removed.
        if let (Some(b), true) = (&r.backup, r.removed > 0 || r.finished > 0) {
            writeln!(out, "backup: {b}")?;
            writeln!(
                out,
                "restore with: {}",
                restore_command(resolved, backend, b)
            )?;
        }
        if !r.not_found.is_empty() {
            writeln!(out, "not found: {}", r.not_found.join(", "))?;
        }
        for n in &r.notes {
            writeln!(out, "note: {n}")?;
        }
    }
    if let Some(s) = &r.stopped {
        let unsure = match r.unsure {
            0 => String::new(),
            n => format!(
                "; {n} more are in the backup but the broker did not answer their removal, so they may still be in \"{queue}\" too"
            ),
        };
        let finish = match &r.journal {
            Some(_) => format!(
                ". Finish with: mqscope {action} {} --resume (nothing is backed up or removed twice)",
                sh(queue)
            ),
            None => String::new(),
        };
        bail!(
            "{action} stopped: {s}. {} message(s) were removed{}{unsure}; the rest is still in \"{queue}\"{finish}",
            r.removed,
            if r.backup.is_some() {
                ", each in the backup"
            } else {
                ""
            }
        );
    }
    if !r.not_found.is_empty() {
        bail!(
            "{} of the ids were not found in \"{queue}\"",
            r.not_found.len()
        );
    }
    Ok(())
}

pub async fn purge(
    backend: &dyn Backend,
    resolved: &Resolved,
    args: &PurgeArgs,
    out: &mut dyn Write,
) -> Result<()> {
    remove(backend, resolved, "purge", &args.queue, &[], &args.how, out)
        .await
        .with_context(|| format!("purge \"{}\"", args.queue))
}

pub async fn delete(
    backend: &dyn Backend,
    resolved: &Resolved,
    args: &DeleteArgs,
    out: &mut dyn Write,
) -> Result<()> {
    remove(
        backend,
        resolved,
        "delete",
        &args.queue,
        &args.ids,
        &args.how,
        out,
    )
    .await
    .with_context(|| format!("delete from \"{}\"", args.queue))
}
