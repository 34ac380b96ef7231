//! Consumption of the topic records a trace found: for each, every consumer group with
//! offsets on its topic, and whether the group has read past it.

use super::{Hop, HopKind, TraceOptions};
use crate::backend::{Backend, BackendError};
use crate::model::{ConsumerGroup, progress_at};

/// Fill in each topic hop's groups. The groups come from the broker's listing plus the ones
/// `opts.groups` names (read by name, for brokers that cannot list groups); returns notes
/// on what could not be read. Nothing is asked when no hop is a topic record.
pub async fn attach_groups(
    backend: &dyn Backend,
    opts: &TraceOptions,
    hops: &mut [Hop],
) -> Vec<String> {
    let records = |h: &Hop| h.kind == HopKind::Topic && h.partition.is_some() && h.offset.is_some();
    if !hops.iter().any(records) {
        return Vec::new();
    }
    let Some(cg) = backend.consumer_groups() else {
        return Vec::new();
    };
    let mut notes = Vec::new();
    let mut groups: Vec<ConsumerGroup> = match cg.list_groups().await {
        Ok(list) => list,
        Err(e) => {
            notes.push(listing_note(&e, opts.groups.is_empty()));
            Vec::new()
        }
    };
    for name in &opts.groups {
        if groups.iter().any(|g| &g.name == name) {
            continue;
        }
        match cg.group(name).await {
            Ok(g) => groups.push(g),
            Err(e) => notes.push(format!("consumer group {name} not read: {e}")),
        }
    }
    for h in hops.iter_mut().filter(|h| records(h)) {
        if let (Some(p), Some(o)) = (h.partition, h.offset) {
            h.groups = progress_at(&groups, &h.queue, p, o);
        }
    }
    notes
}

fn listing_note(e: &BackendError, none_named: bool) -> String {
    let hint = if none_named {
        "; name groups with --group to check them anyway"
    } else {
        ""
    };
    format!("consumer groups not listed: {e}{hint}")
}
