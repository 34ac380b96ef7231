//! Which queue a queue's dead letters reach, and which queues are dead-letter queues:
//! AMQP queues by routing their dead-letter target through the bindings, topics by name.
//! Pure functions over listed queues, shared by every backend.

use super::queue::{DEAD_LETTER_SUFFIXES, dead_letter_origin_name, looks_like_dead_letter};
use super::topology::Topology;
use super::{FieldTable, QueueKind, QueueSummary};

/// Fill in `dead_letter_queue`, `is_dead_letter` and `dead_letter_sources`: AMQP queues by
/// routing their dead-letter target through the bindings, topics by name convention.
pub fn resolve_dead_letters(list: &mut [QueueSummary], topology: &Topology) {
    let mut feeds: Vec<(usize, String)> = Vec::new();
    for (i, s) in list.iter().enumerate() {
        if let Some(dl) = &s.dead_letter {
            let keys = match &dl.routing_key {
                Some(k) => vec![k.clone()],
                // Without a dead-letter routing key the message keeps its own keys; the
                // queue's own name is the best guess for a direct publish.
                None => vec![s.name.clone()],
            };
            let mut reached = Vec::new();
            for k in keys {
                for q in topology.route(&dl.exchange, &k, &FieldTable::new()) {
                    if !reached.contains(&q) {
                        reached.push(q);
                    }
                }
            }
            if let Some(first) = reached.first() {
                feeds.push((i, first.clone()));
            }
        }
    }
    for (i, target) in feeds {
        let source = list[i].name.clone();
        list[i].dead_letter_queue = Some(target.clone());
        if let Some(t) = list
            .iter_mut()
            .find(|s| s.name == target && s.kind == QueueKind::Queue)
        {
            t.is_dead_letter = true;
            if !t.dead_letter_sources.contains(&source) {
                t.dead_letter_sources.push(source);
            }
        }
    }
    pair_dead_letter_topics(list);
    for s in list.iter_mut() {
        if looks_like_dead_letter(&s.name, DEAD_LETTER_SUFFIXES) {
            s.is_dead_letter = true;
        }
    }
}

/// Topics have no dead-letter setting: `payments-dlt` is paired with `payments` by name.
pub fn pair_dead_letter_topics(list: &mut [QueueSummary]) {
    let pairs: Vec<(String, String)> = list
        .iter()
        .filter(|s| s.kind == QueueKind::Topic)
        .filter_map(|s| {
            dead_letter_origin_name(&s.name, DEAD_LETTER_SUFFIXES).map(|o| (o, s.name.clone()))
        })
        .collect();
    for (origin, dlt) in pairs {
        if let Some(o) = list
            .iter_mut()
            .find(|s| s.name == origin && s.kind == QueueKind::Topic)
        {
            o.dead_letter_queue.get_or_insert(dlt.clone());
        }
        if let Some(d) = list.iter_mut().find(|s| s.name == dlt) {
            d.is_dead_letter = true;
            if !d.dead_letter_sources.contains(&origin) {
                d.dead_letter_sources.push(origin.clone());
            }
        }
    }
}
