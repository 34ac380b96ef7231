//! What an interrupted purge or delete left behind, from its backup and its journal.

use crate::ops::journal::Entry;
use std::collections::HashMap;

/// What an interrupted purge or delete left behind: messages written to the backup whose
/// removal the broker never answered (they may still be in the queue), per fingerprint.
#[derive(Debug, Default)]
pub struct RemovalResume {
    pub(super) unsure: HashMap<String, u64>,
    /// delete: the ids and fingerprints the backup holds already, not to be looked for again.
    pub(super) found: std::collections::HashSet<String>,
}

impl RemovalResume {
    /// From the backup's records (fingerprint and message id of each) and the journal.
    pub fn new(backed_up: &[(String, Option<String>)], entries: &[Entry]) -> Self {
        let mut r = RemovalResume::default();
        for (key, id) in backed_up {
            *r.unsure.entry(key.clone()).or_default() += 1;
            r.found.insert(key.clone());
            if let Some(id) = id {
                r.found.insert(id.clone());
            }
        }
        for e in entries {
            if let Entry::Acked { keys } = e {
                for k in keys {
                    if let Some(n) = r.unsure.get_mut(k) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
        r.unsure.retain(|_, n| *n > 0);
        r
    }

    /// Backed up by the interrupted run, removal unanswered.
    pub fn unsure(&self) -> u64 {
        self.unsure.values().sum()
    }

    pub(super) fn take_unsure(&mut self, key: &str) -> bool {
        crate::ops::take_one(&mut self.unsure, key)
    }
}
