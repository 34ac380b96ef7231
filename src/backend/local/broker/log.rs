//! The log side of the local broker, Kafka-style: partitioned topics that drop their oldest
//! records past a cap, keys placed by Kafka's own partitioner, and consumer groups with
//! committed offsets.

use super::{BrokerError, LocalBroker, Meter, Partition, Record, State, TapEvent, Topic};
use crate::model::{ConsumerGroup, FieldTable, FieldValue, Message, PartitionInfo, PartitionLag};
use bytes::Bytes;
use chrono::DateTime;
use std::sync::Arc;

impl LocalBroker {
    pub fn declare_topic(&self, name: &str, partitions: u32) -> Result<(), BrokerError> {
        if name.is_empty() || partitions == 0 {
            return Err(BrokerError::Invalid(
                "a topic needs a name and at least one partition".into(),
            ));
        }
        let mut st = self.lock();
        if st.queues.contains_key(name) {
            return Err(BrokerError::Conflict(name.to_string()));
        }
        match st.topics.get(name) {
            Some(t) if t.partitions.len() != partitions as usize => {
                Err(BrokerError::Conflict(name.to_string()))
            }
            Some(_) => Ok(()),
            None => {
                st.topics.insert(
                    name.to_string(),
                    Topic {
                        partitions: (0..partitions).map(|_| Partition::default()).collect(),
                        next_unkeyed: 0,
                        meter: Meter::default(),
                    },
                );
                Ok(())
            }
        }
    }

    pub fn set_group_members(&self, group: &str, members: u32) {
        self.lock()
            .groups
            .entry(group.to_string())
            .or_default()
            .members = members;
    }

    // ---- log side ----

    /// Append a record. Without a partition, a key picks one by hash (Kafka's murmur2), and
    /// no key picks round-robin. Returns (partition, offset).
    pub fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Bytes>,
        headers: FieldTable,
        payload: Bytes,
    ) -> Result<(i32, i64), BrokerError> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let t = st.topic_mut(topic)?;
        let n = t.partitions.len();
        let p = match partition {
            Some(p) => {
                usize::try_from(p)
                    .ok()
                    .filter(|i| *i < n)
                    .ok_or(BrokerError::NoPartition {
                        topic: topic.to_string(),
                        partition: p,
                    })?
            }
            None => match &key {
                Some(k) => (murmur2(k) & 0x7fff_ffff) as usize % n,
                None => {
                    t.next_unkeyed = (t.next_unkeyed + 1) % n;
                    t.next_unkeyed
                }
            },
        };
        let record = Arc::new(Record {
            key,
            headers,
            payload,
            timestamp_ms: now,
        });
        let part = &mut t.partitions[p];
        part.records.push_back(Arc::clone(&record));
        while part.records.len() > self.config.max_partition_records {
            part.records.pop_front();
            part.start += 1;
        }
        let offset = part.high() - 1;
        t.meter.publish(now);
        let partition = p as i32;
        if self.tapped() {
            let m = record_message(topic, partition, offset, &record);
            self.emit(TapEvent {
                source: topic.to_string(),
                message: m,
                delivery: None,
            });
        }
        Ok((partition, offset))
    }

    /// Up to `max` records of one partition from `offset` (clamped to the log start).
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Message>, BrokerError> {
        let st = self.lock();
        let part = partition_of(&st, topic, partition)?;
        let from = offset.max(part.start);
        let skip = usize::try_from(from - part.start).unwrap_or(usize::MAX);
        Ok(part
            .records
            .iter()
            .skip(skip)
            .take(max)
            .enumerate()
            .map(|(i, r)| record_message(topic, partition, from + i as i64, r))
            .collect())
    }

    /// First offset of a partition whose timestamp is at or after `ms` (the high watermark
    /// when there is none), like Kafka's `offsets_for_times`.
    pub fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        ms: i64,
    ) -> Result<i64, BrokerError> {
        let st = self.lock();
        let part = partition_of(&st, topic, partition)?;
        let idx = part.records.partition_point(|r| r.timestamp_ms < ms);
        Ok(part.start + idx as i64)
    }

    pub fn partitions(&self, topic: &str) -> Result<Vec<PartitionInfo>, BrokerError> {
        let st = self.lock();
        let t = st.topic(topic)?;
        Ok(t.partitions
            .iter()
            .enumerate()
            .map(|(i, p)| PartitionInfo {
                partition: i as i32,
                low: p.start,
                high: p.high(),
                leader: Some(0),
                replicas: vec![0],
            })
            .collect())
    }

    /// Commit a group's next offset to read on one partition.
    pub fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), BrokerError> {
        let mut st = self.lock();
        partition_of(&st, topic, partition)?;
        st.groups
            .entry(group.to_string())
            .or_default()
            .committed
            .insert((topic.to_string(), partition), offset);
        Ok(())
    }

    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.lock()
            .groups
            .get(group)
            .and_then(|g| g.committed.get(&(topic.to_string(), partition)).copied())
    }

    pub fn groups(&self) -> Vec<ConsumerGroup> {
        let st = self.lock();
        st.groups
            .iter()
            .map(|(name, g)| {
                let mut topics: Vec<String> = g.committed.keys().map(|(t, _)| t.clone()).collect();
                topics.dedup();
                let partitions: Vec<PartitionLag> = g
                    .committed
                    .iter()
                    .map(|((topic, p), off)| {
                        let high = st
                            .topics
                            .get(topic)
                            .and_then(|t| t.partitions.get(*p as usize))
                            .map(Partition::high)
                            .unwrap_or(*off);
                        PartitionLag {
                            topic: topic.clone(),
                            partition: *p,
                            committed: Some(*off),
                            high,
                            lag: u64::try_from(high - off).unwrap_or(0),
                        }
                    })
                    .collect();
                ConsumerGroup {
                    name: name.clone(),
                    state: if g.members > 0 { "Stable" } else { "Empty" }.to_string(),
                    members: g.members,
                    topics,
                    lag: partitions.iter().map(|p| p.lag).sum(),
                    partitions,
                }
            })
            .collect()
    }
}

fn partition_of<'a>(
    st: &'a State,
    topic: &str,
    partition: i32,
) -> Result<&'a Partition, BrokerError> {
    let t = st.topic(topic)?;
    usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .ok_or(BrokerError::NoPartition {
            topic: topic.to_string(),
            partition,
        })
}

fn record_message(topic: &str, partition: i32, offset: i64, r: &Record) -> Message {
    let mut m = Message::new(topic, u64::try_from(offset).unwrap_or(0), r.payload.clone());
    m.partition = Some(partition);
    m.offset = Some(offset);
    m.key = r.key.clone();
    m.headers = r.headers.clone();
    m.timestamp = DateTime::from_timestamp_millis(r.timestamp_ms);
    m
}

/// Kafka's default partitioner hash (murmur2, seed 0x9747b28c), so keys land where a
/// Java producer would put them.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// A header value of a Kafka record (they are byte strings).
pub fn kafka_header(value: impl Into<Bytes>) -> FieldValue {
    FieldValue::LongString(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's own partitioner tests (Utils.murmur2).
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }
}
