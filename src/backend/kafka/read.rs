//! Reading windows of a topic: which offset range of each partition a peek needs (pure),
//! and a bounded read of exactly those ranges by a consumer that only uses `assign`.

use super::client::{Ctx, map_err};
use crate::backend::{BackendError, PeekFrom, Result};
use crate::model::{FieldTable, FieldValue, Message, MessageView};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Offset, TopicPartitionList};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A partition's retained offsets: `low` is the first, `high` one past the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

/// Offsets `[start, end)` of one partition to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub partition: i32,
    pub start: i64,
    pub end: i64,
}

/// The ranges a peek reads. `by_time` holds, for a time peek, the first offset at or after
/// the time per partition (None: no message that late). Every range holds at most `limit`
/// offsets, so a read never holds more than `limit` messages per partition.
pub fn plan(
    marks: &[Marks],
    from: &PeekFrom,
    limit: usize,
    by_time: &HashMap<i32, Option<i64>>,
    notes: &mut Vec<String>,
) -> Vec<Range> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    marks
        .iter()
        .map(|m| {
            let start = match from {
                PeekFrom::Start => m.low,
                PeekFrom::Position(o) => PeekFrom::log_offset(*o, m.partition, m.low, notes)
                    .clamp(m.low, m.high.max(m.low)),
                PeekFrom::Time(_) => by_time
                    .get(&m.partition)
                    .copied()
                    .flatten()
                    .unwrap_or(m.high)
                    .clamp(m.low, m.high.max(m.low)),
                PeekFrom::Last => m.high.saturating_sub(limit).max(m.low),
            };
            Range {
                partition: m.partition,
                start,
                end: start.saturating_add(limit).min(m.high).max(start),
            }
        })
        .collect()
}

/// A record's headers as librdkafka holds them, read through its C API: rdkafka's own
/// iterator unwraps each name as UTF-8 and so panics on a record from a producer that
/// wrote another name (Kafka's protocol allows any bytes).
pub struct RawHeaders<'a> {
    ptr: *const rdkafka::bindings::rd_kafka_headers_t,
    count: usize,
    _message: std::marker::PhantomData<&'a ()>,
}

impl<'a> RawHeaders<'a> {
    pub fn of(m: &'a BorrowedMessage<'_>) -> Self {
        use rdkafka::bindings as rd;
        let mut ptr: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
        // SAFETY: `m` is a live message for 'a; librdkafka parses its headers once and
        // keeps them with the message, so the pointer and what it holds live as long.
        let err = unsafe { rd::rd_kafka_message_headers(m.ptr(), &mut ptr) };
        let count = if err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && !ptr.is_null()
        {
            // SAFETY: a valid headers pointer, from above.
            unsafe { rd::rd_kafka_header_cnt(ptr) }
        } else {
            0
        };
        Self {
            ptr,
            count,
            _message: std::marker::PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Header `idx`: its name's bytes and its value (None: a null value).
    pub fn get(&self, idx: usize) -> Option<(&'a [u8], Option<&'a [u8]>)> {
        use rdkafka::bindings as rd;
        if idx >= self.count {
            return None;
        }
        let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0usize);
        // SAFETY: `idx` is below the count librdkafka gave for this valid pointer.
        let err =
            unsafe { rd::rd_kafka_header_get_all(self.ptr, idx, &mut name, &mut value, &mut size) };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            return None;
        }
        // SAFETY: librdkafka's names are NUL-terminated and its values `size` bytes long,
        // both owned by the message for 'a.
        let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes();
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) });
        Some((name, value))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + '_ {
        (0..self.count).filter_map(|i| self.get(i))
    }
}

/// One Kafka record as a message: headers are bytes (`LongString`) or null (`Void`); a
/// header name that is not UTF-8 is kept with U+FFFD in place of its bad bytes.
pub fn to_message(m: &BorrowedMessage<'_>) -> Message {
    let offset = m.offset();
    let mut msg = Message::new(
        m.topic(),
        u64::try_from(offset).unwrap_or(0),
        Bytes::copy_from_slice(m.payload().unwrap_or_default()),
    );
    msg.partition = Some(m.partition());
    msg.offset = Some(offset);
    msg.key = m.key().map(Bytes::copy_from_slice);
    msg.timestamp = m
        .timestamp()
        .to_millis()
        .and_then(DateTime::from_timestamp_millis);
    let hs = RawHeaders::of(m);
    if !hs.is_empty() {
        let mut t = FieldTable(Vec::with_capacity(hs.len()));
        for (name, value) in hs.iter() {
            let v = match value {
                Some(b) => FieldValue::LongString(Bytes::copy_from_slice(b)),
                None => FieldValue::Void,
            };
            // Kafka allows repeated header names; keep them all, in order.
            t.0.push((String::from_utf8_lossy(name).into_owned(), v));
        }
        msg.headers = t;
    }
    msg
}

/// A Kafka record as correlation-ID rules and scan filters read it, without copying it
/// into a [`Message`]: what [`to_message`] would make of it, read in place.
pub struct RecordView<'a, 'b> {
    message: &'a BorrowedMessage<'b>,
    headers: RawHeaders<'a>,
}

impl<'a, 'b> RecordView<'a, 'b> {
    pub fn new(message: &'a BorrowedMessage<'b>) -> Self {
        Self {
            message,
            headers: RawHeaders::of(message),
        }
    }
}

impl MessageView for RecordView<'_, '_> {
    fn correlation_property(&self) -> Option<&str> {
        None
    }

    fn header_text(&self, name: &str) -> Option<Cow<'_, str>> {
        // The first header of that name, as `to_message` keeps them (a name that is not
        // UTF-8 never equals a UTF-8 one, replaced bytes or not).
        let (_, value) = self
            .headers
            .iter()
            .find(|(n, _)| std::str::from_utf8(n).is_ok_and(|n| n.eq_ignore_ascii_case(name)))?;
        std::str::from_utf8(value?).ok().map(Cow::Borrowed)
    }

    fn payload(&self) -> &[u8] {
        self.message.payload().unwrap_or_default()
    }

    fn key(&self) -> Option<&[u8]> {
        self.message.key()
    }

    fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.message
            .timestamp()
            .to_millis()
            .and_then(DateTime::from_timestamp_millis)
    }
}

/// Read `ranges` of `topic` with an assign-only consumer. Gives up, naming the partitions,
/// when no partition has made progress for `stall` (a leader down, a partition offline).
pub fn read_ranges(
    consumer: &BaseConsumer<Ctx>,
    topic: &str,
    ranges: &[Range],
    stall: Duration,
    shown: &str,
) -> Result<Vec<Message>> {
    let total: i64 = ranges.iter().map(|r| (r.end - r.start).max(0)).sum();
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0).min(100_000));
    stream_ranges(consumer, topic, ranges, stall, shown, |m| {
        out.push(m);
        true
    })?;
    Ok(out)
}

/// Like [`read_ranges`], handing each message to `sink` as it arrives, all partitions at
/// once; `sink` returns false to stop early.
pub fn stream_ranges(
    consumer: &BaseConsumer<Ctx>,
    topic: &str,
    ranges: &[Range],
    stall: Duration,
    shown: &str,
    mut sink: impl FnMut(Message) -> bool,
) -> Result<()> {
    stream_records(consumer, topic, ranges, stall, shown, |m| {
        sink(to_message(m))
    })
}

/// Like [`stream_ranges`], handing `sink` each record as librdkafka holds it, for callers
/// that look at a record before (or instead of) copying it into a message.
pub fn stream_records(
    consumer: &BaseConsumer<Ctx>,
    topic: &str,
    ranges: &[Range],
    stall: Duration,
    shown: &str,
    mut sink: impl FnMut(&BorrowedMessage<'_>) -> bool,
) -> Result<()> {
    let mut pending: HashMap<i32, Range> = ranges
        .iter()
        .filter(|r| r.end > r.start)
        .map(|r| (r.partition, *r))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for r in pending.values() {
        tpl.add_partition_offset(topic, r.partition, Offset::Offset(r.start))
            .map_err(|e| map_err(&e, "assigning partitions", shown, consumer.context()))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| map_err(&e, "assigning partitions", shown, consumer.context()))?;
    let mut progress = Instant::now();
    // Set per record, and turned into a time only when a poll comes back empty: reading
    // the clock for every record cost more than a twentieth of a large read.
    let mut progressed = false;
    let mut stalled_for = |progressed: &mut bool| {
        if std::mem::take(progressed) {
            progress = Instant::now();
        }
        progress.elapsed()
    };
    while !pending.is_empty() {
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            if stalled_for(&mut progressed) >= stall {
                return Err(stalled(&pending, stall, shown, consumer.context()));
            }
            continue;
        };
        match polled {
            Ok(m) => {
                if m.topic() != topic {
                    continue;
                }
                let p = m.partition();
                let Some(r) = pending.get(&p).copied() else {
                    continue;
                };
                let o = m.offset();
                progressed = true;
                if o >= r.start && o < r.end && !sink(&m) {
                    return Ok(());
                }
                if o >= r.end - 1 {
                    pending.remove(&p);
                    pause(consumer, topic, p);
                }
            }
            Err(KafkaError::PartitionEOF(p)) => {
                // EOF for a partition we read: nothing more below its high watermark.
                if pending.remove(&p).is_some() {
                    progressed = true;
                    pause(consumer, topic, p);
                }
            }
            Err(e) => {
                // Transient trouble (a broker reconnecting) is retried by librdkafka; only
                // errors that cannot heal end the read.
                if e.is_fatal_for_read() {
                    return Err(map_err(&e, "reading", shown, consumer.context()));
                }
                if stalled_for(&mut progressed) >= stall {
                    return Err(stalled(&pending, stall, shown, consumer.context()));
                }
            }
        }
    }
    Ok(())
}

/// The first record at or after `offset` and below `high`: its offset and timestamp (ms),
/// or None when there is none.
fn probe(
    consumer: &BaseConsumer<Ctx>,
    topic: &str,
    partition: i32,
    offset: i64,
    high: i64,
    stall: Duration,
    shown: &str,
) -> Result<Option<(i64, i64)>> {
    if offset >= high {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(|e| map_err(&e, "assigning partitions", shown, consumer.context()))?;
    consumer
        .assign(&tpl)
        .map_err(|e| map_err(&e, "assigning partitions", shown, consumer.context()))?;
    let started = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m))
                if m.topic() == topic && m.partition() == partition && m.offset() >= offset =>
            {
                if m.offset() >= high {
                    return Ok(None);
                }
                let ts = m.timestamp().to_millis().unwrap_or(i64::MIN);
                return Ok(Some((m.offset(), ts)));
            }
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition => return Ok(None),
            Some(Err(e)) if e.is_fatal_for_read() => {
                return Err(map_err(&e, "reading", shown, consumer.context()));
            }
            _ if started.elapsed() >= stall => {
                let pending = HashMap::from([(
                    partition,
                    Range {
                        partition,
                        start: offset,
                        end: high,
                    },
                )]);
                return Err(stalled(&pending, stall, shown, consumer.context()));
            }
            _ => {}
        }
    }
}

/// Correct a broker's "no record that late" by looking at the records themselves: when the
/// last record is at or after `ms` the answer was wrong (librdkafka's mock cluster answers
/// every lookup by time that way), so binary-search the partition by record timestamp,
/// which finds Kafka's answer whenever timestamps grow with offsets. Returns the offset
/// and whether the broker's answer had to be corrected.
pub fn check_time_lookup(
    consumer: &BaseConsumer<Ctx>,
    topic: &str,
    marks: Marks,
    ms: i64,
    stall: Duration,
    shown: &str,
) -> Result<(Option<i64>, bool)> {
    if marks.high <= marks.low {
        return Ok((None, false));
    }
    let last = probe(
        consumer,
        topic,
        marks.partition,
        marks.high - 1,
        marks.high,
        stall,
        shown,
    )?;
    if !matches!(last, Some((_, ts)) if ts >= ms) {
        return Ok((None, false));
    }
    let (mut lo, mut hi) = (marks.low, marks.high);
    let mut best = None;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match probe(
            consumer,
            topic,
            marks.partition,
            mid,
            marks.high,
            stall,
            shown,
        )? {
            None => hi = mid,
            Some((o, ts)) if ts >= ms => {
                best = Some(o);
                hi = mid;
            }
            Some((o, _)) => lo = o + 1,
        }
    }
    Ok((best, true))
}

/// Stop fetching a finished partition so prefetching does not read past the window.
fn pause(consumer: &BaseConsumer<Ctx>, topic: &str, partition: i32) {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    // A failed pause only costs some prefetched messages that are then dropped.
    let _ = consumer.pause(&tpl);
}

fn stalled(pending: &HashMap<i32, Range>, stall: Duration, shown: &str, ctx: &Ctx) -> BackendError {
    let mut parts: Vec<i32> = pending.keys().copied().collect();
    parts.sort_unstable();
    let list = parts
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let why = ctx
        .last_error()
        .map(|e| format!("; last error: {e}"))
        .unwrap_or_default();
    BackendError::Unreachable {
        target: shown.to_string(),
        reason: format!(
            "partition(s) {list} sent nothing for {:.0}s (is their leader down?){why}",
            stall.as_secs_f32()
        ),
    }
}

trait ReadError {
    fn is_fatal_for_read(&self) -> bool;
}

impl ReadError for KafkaError {
    fn is_fatal_for_read(&self) -> bool {
        use rdkafka::error::RDKafkaErrorCode as C;
        matches!(
            self.rdkafka_error_code(),
            Some(
                C::UnknownTopicOrPartition
                    | C::UnknownTopic
                    | C::UnknownPartition
                    | C::TopicAuthorizationFailed
                    | C::Authentication
                    | C::SaslAuthenticationFailed
                    | C::OffsetOutOfRange
                    | C::Fatal
            )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::merge_partitions;
    use chrono::Utc;

    fn marks() -> Vec<Marks> {
        vec![
            Marks {
                partition: 0,
                low: 0,
                high: 10,
            },
            Marks {
                partition: 1,
                low: 5,
                high: 8,
            },
            Marks {
                partition: 2,
                low: 0,
                high: 0,
            },
        ]
    }

    fn ranges(from: PeekFrom, limit: usize, by_time: &[(i32, Option<i64>)]) -> Vec<(i64, i64)> {
        let bt = by_time.iter().copied().collect();
        plan(&marks(), &from, limit, &bt, &mut Vec::new())
            .iter()
            .map(|r| (r.start, r.end))
            .collect()
    }

    #[test]
    fn windows_per_partition() {
        assert_eq!(
            ranges(PeekFrom::Start, 4, &[]),
            vec![(0, 4), (5, 8), (0, 0)]
        );
        assert_eq!(
            ranges(PeekFrom::Last, 2, &[]),
            vec![(8, 10), (6, 8), (0, 0)]
        );
        assert_eq!(
            ranges(PeekFrom::Last, 0, &[]),
            vec![(10, 10), (8, 8), (0, 0)]
        );
        assert_eq!(
            ranges(PeekFrom::Position(7), 5, &[]),
            vec![(7, 10), (7, 8), (0, 0)]
        );
        assert_eq!(
            ranges(PeekFrom::Position(100), 5, &[]),
            vec![(10, 10), (8, 8), (0, 0)]
        );
        let t = PeekFrom::Time(Utc::now());
        assert_eq!(
            ranges(t, 5, &[(0, Some(3)), (1, None)]),
            vec![(3, 8), (8, 8), (0, 0)]
        );
    }

    #[test]
    fn offsets_below_the_log_start_are_noted() {
        let mut notes = Vec::new();
        let r = plan(
            &marks()[1..2],
            &PeekFrom::Position(2),
            3,
            &HashMap::new(),
            &mut notes,
        );
        assert_eq!((r[0].start, r[0].end), (5, 8));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("below the log start 5"), "{notes:?}");
    }

    #[test]
    fn merge_orders_by_time_then_partition() {
        let msg = |p: i32, o: i64, ms: i64| {
            let mut m = Message::new("t", o as u64, Bytes::new());
            m.partition = Some(p);
            m.offset = Some(o);
            m.timestamp = DateTime::from_timestamp_millis(ms);
            m
        };
        let all = vec![msg(0, 0, 10), msg(0, 1, 30), msg(1, 0, 20), msg(1, 1, 30)];
        let key = |ms: &[Message]| -> Vec<(i32, i64)> {
            ms.iter()
                .map(|m| (m.partition.unwrap(), m.offset.unwrap()))
                .collect()
        };
        assert_eq!(
            key(&merge_partitions(all.clone(), false, 3)),
            vec![(0, 0), (1, 0), (0, 1)]
        );
        assert_eq!(key(&merge_partitions(all, true, 2)), vec![(0, 1), (1, 1)]);
    }
}
