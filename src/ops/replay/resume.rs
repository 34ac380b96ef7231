//! Resuming an interrupted replay: what its journal says was confirmed, acked or in flight,
//! where the copies in flight may have landed, and the refusal of a new replay while an
//! earlier one of the same queue is unfinished.

use super::report::Report;
use super::{REPLAY_ID, ReplayError};
use crate::backend::{Backend, BackendError, Destination};
use crate::format::text::shell_word;
use crate::model::FieldTable;
use crate::model::topology::Topology;
use crate::ops::journal::{self, Entry};
use crate::ops::scan::{ScanOptions, read_all};
use std::collections::{BTreeMap, HashMap};

/// What an earlier run of the same replay left behind, read from its journal.
#[derive(Debug, Default)]
pub struct Resume {
    /// Copies confirmed by the broker whose originals were not removed yet: count per key.
    confirmed: HashMap<String, u64>,
    /// Copies sent, with no confirm or failure recorded: count per key, with destination
    /// and the copy's headers (to see where it may have landed).
    in_flight: HashMap<String, (u64, Destination, FieldTable)>,
    pub started: Option<chrono::DateTime<chrono::Utc>>,
    /// Keys confirmed in the earlier run (for --limit accounting).
    pub replayed_before: u64,
}

impl Resume {
    pub fn from_entries(entries: &[Entry]) -> Self {
        let mut taken: HashMap<String, (u64, Option<Destination>, FieldTable)> = HashMap::new();
        let mut confirmed: HashMap<String, u64> = HashMap::new();
        let mut settled: HashMap<String, u64> = HashMap::new();
        let mut acked: HashMap<String, u64> = HashMap::new();
        let mut r = Resume::default();
        for e in entries {
            match e {
                Entry::Begin { time, .. } => {
                    r.started = chrono::DateTime::parse_from_rfc3339(time)
                        .ok()
                        .map(|t| t.with_timezone(&chrono::Utc));
                }
                Entry::Take {
                    key, dest, record, ..
                } => {
                    let headers = record
                        .get("headers")
                        .and_then(|h| FieldTable::from_json(h).ok())
                        .unwrap_or_default();
                    let t = taken.entry(key.clone()).or_insert((0, None, headers));
                    t.0 += 1;
                    t.1 = crate::format::destination::destination_from_json(dest);
                }
                Entry::Confirmed { key } | Entry::Found { key } => {
                    *confirmed.entry(key.clone()).or_default() += 1;
                    *settled.entry(key.clone()).or_default() += 1;
                    r.replayed_before += 1;
                }
                Entry::Failed { key, .. } => *settled.entry(key.clone()).or_default() += 1,
                Entry::Acked { keys } => {
                    for k in keys {
                        *acked.entry(k.clone()).or_default() += 1;
                    }
                }
                Entry::End { .. } => {}
            }
        }
        for (k, n) in &confirmed {
            let left = n.saturating_sub(acked.get(k).copied().unwrap_or(0));
            if left > 0 {
                r.confirmed.insert(k.clone(), left);
            }
        }
        for (k, (n, dest, headers)) in taken {
            let left = n.saturating_sub(settled.get(&k).copied().unwrap_or(0));
            if let (true, Some(dest)) = (left > 0, dest) {
                r.in_flight.insert(k, (left, dest, headers));
            }
        }
        r
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.values().map(|v| v.0).sum()
    }

    /// Confirmed copies whose originals were not found (and so not removed).
    pub fn unresolved(&self) -> u64 {
        self.confirmed.values().sum()
    }

    pub(super) fn take_confirmed(&mut self, key: &str) -> bool {
        crate::ops::take_one(&mut self.confirmed, key)
    }
}

/// Look for copies that were in flight when a replay was interrupted: read the queues
/// their destinations route to (or the topic, from when the replay began) for the replay
/// id header. Found ones count as confirmed.
pub(super) async fn settle_in_flight(
    backend: &dyn Backend,
    resume: &mut Resume,
    topology: Option<&Topology>,
    report: &mut Report,
) -> Result<(), ReplayError> {
    if resume.in_flight.is_empty() {
        return Ok(());
    }
    let mut places: BTreeMap<String, bool> = BTreeMap::new();
    for (_, dest, headers) in resume.in_flight.values() {
        match dest {
            Destination::Exchange {
                exchange,
                routing_key,
            } => {
                let queues = match (exchange.is_empty(), topology) {
                    (true, _) => vec![routing_key.clone()],
                    (false, Some(t)) => t.route(exchange, routing_key, headers),
                    (false, None) => Vec::new(),
                };
                for q in queues {
                    places.insert(q, false);
                }
            }
            Destination::Topic { topic, .. } => {
                places.insert(topic.clone(), true);
            }
        }
    }
    let mut found: HashMap<String, u64> = HashMap::new();
    for (place, is_log) in places {
        let Ok(detail) = backend.describe_queue(&place).await else {
            continue;
        };
        let opts = ScanOptions {
            since: if is_log { resume.started } else { None },
            ..ScanOptions::default()
        };
        read_all(
            backend,
            &detail,
            &opts,
            |page| {
                for m in page {
                    if let Some(id) = m.headers.get(REPLAY_ID).and_then(|v| v.as_bytes()) {
                        let id = String::from_utf8_lossy(id);
                        if resume.in_flight.contains_key(id.as_ref()) {
                            *found.entry(id.into_owned()).or_default() += 1;
                        }
                    }
                }
                Ok::<(), BackendError>(())
            },
            |_| {},
        )
        .await?;
    }
    let mut found_total = 0;
    for (key, n) in found {
        if let Some((left, _, _)) = resume.in_flight.get(&key) {
            let n = n.min(*left);
            found_total += n;
            *resume.confirmed.entry(key).or_default() += n;
        }
    }
    let total = resume.in_flight();
    report.note(format!(
        "{total} message(s) were being published when the last run stopped: {found_total} found at their destination (not published again), {} not found (replayed now; if a consumer had already taken them, they arrive twice)",
        total - found_total
    ));
    resume.in_flight.clear();
    Ok(())
}

/// Refuse a new replay of `source` while an earlier one on the same broker is unfinished:
/// it may have left copies whose originals are still there (or the other way round), and
/// a new replay would send those a second time. Only its own resume knows which they are.
pub fn check_no_unfinished_replay(target: &str, source: &str) -> Result<(), ReplayError> {
    match journal::unfinished_of(target, source)?.first() {
        Some(open) => Err(ReplayError::Invalid(format!(
            "an earlier replay of \"{source}\" on {target} did not finish ({}): a new one could send some messages twice. Finish it with: mqscope replay --resume {1} (nothing is sent twice), or, after looking at it, give it up with: mqscope replay --abandon {1}",
            open.display(),
            shell_word(&open.display().to_string())
        ))),
        None => Ok(()),
    }
}
