//! Message identity: the key that names a message however often it is redelivered, and the
//! headers mqscope's replay writes on every copy (where it came from, how often).

use crate::model::Message;
use sha2::{Digest, Sha256};

/// Header naming the queue/topic and position a replayed copy came from.
pub const REPLAYED_FROM: &str = "x-mqscope-replayed-from";
/// Header counting how many times a message has been replayed.
pub const REPLAY_COUNT: &str = "x-mqscope-replay-count";
/// Header holding the replayed message's key, so a resumed replay can find copies that
/// reached their destination although their confirm was never recorded.
pub const REPLAY_ID: &str = "x-mqscope-replay-id";
/// Headers a broker (or Spring Kafka, or Kafka Connect) wrote when the message died.
pub fn is_death_header(name: &str) -> bool {
    name == "x-death"
        || name == "x-delivery-count"
        || name.starts_with("x-first-death-")
        || name.starts_with("x-last-death-")
        || name.starts_with("kafka_dlt-")
        || name.starts_with("__connect.errors.")
}

/// A stable key for a message, the same however often it is redelivered: a log record's
/// topic, partition and offset; for a queue message a hash of what its publisher gave it
/// (ids, timestamp, payload, headers other than the death headers).
pub fn message_key(m: &Message) -> String {
    if let (Some(p), Some(o)) = (m.partition, m.offset) {
        return format!("{}/{p}@{o}", m.queue);
    }
    // Written straight from the table, without building a `Value` first.
    let mut headers = Vec::new();
    let direct = m.headers.serialize_json_where(
        |k| !is_death_header(k),
        &mut serde_json::Serializer::new(&mut headers),
    );
    if direct.is_err() {
        headers = kept_headers_json(m);
    }
    key_from(m, &headers)
}

/// The headers but their deaths, as `to_json().to_string()` writes them: keys already
/// handed out were made from exactly these bytes.
fn kept_headers_json(m: &Message) -> Vec<u8> {
    let kept = m.headers.filtered(|k| !is_death_header(k));
    kept.to_json().to_string().into_bytes()
}

/// A queue message's key from what its publisher gave it and its headers' JSON.
fn key_from(m: &Message, headers: &[u8]) -> String {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    field(m.properties.message_id.as_deref().unwrap_or("").as_bytes());
    field(
        m.properties
            .correlation_id
            .as_deref()
            .unwrap_or("")
            .as_bytes(),
    );
    field(&m.properties.timestamp.unwrap_or(0).to_le_bytes());
    field(m.key.as_deref().unwrap_or(b""));
    field(&m.payload);
    field(headers);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    h.finalize()[..8]
        .iter()
        .flat_map(|b| {
            [
                HEX[usize::from(b >> 4)] as char,
                HEX[usize::from(b & 15)] as char,
            ]
        })
        .collect()
}

/// How many times mqscope has replayed this message already.
pub fn replay_count(m: &Message) -> u64 {
    let Some(v) = m.headers.get(REPLAY_COUNT) else {
        return 0;
    };
    v.as_i64()
        .and_then(|n| u64::try_from(n).ok())
        .or_else(|| {
            v.as_bytes()
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Where a message was read from, for the replayed-from header: `queue@position`, or
/// `topic/partition@offset`.
pub fn origin_label(m: &Message) -> String {
    match (m.partition, m.offset) {
        (Some(p), Some(o)) => format!("{}/{p}@{o}", m.queue),
        _ => format!("{}@{}", m.queue, m.position),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::death::dead;
    use crate::model::{FieldTable, FieldValue};

    /// How keys were made before headers were written straight to the serializer: keys
    /// already in journals and in users' `--ids` must not change.
    fn key_as_first_made(m: &Message) -> String {
        key_from(m, &kept_headers_json(m))
    }

    #[test]
    fn message_keys_are_the_ones_made_before() {
        let mut plain = Message::new("q", 0, b"body".to_vec());
        plain.properties.correlation_id = Some("c-1".into());
        let mut typed = dead("orders", "ex", "rk");
        typed.headers.insert("x-order", FieldValue::I64(7));
        typed.headers.insert("n", FieldValue::I32(-3));
        typed
            .headers
            .insert("when", FieldValue::Timestamp(1_700_000_000));
        typed.headers.insert("f", FieldValue::F64(f64::NAN));
        typed.headers.insert(
            "t",
            FieldValue::Table(FieldTable(vec![
                ("$type".into(), FieldValue::string("tag")),
                ("a".into(), FieldValue::Array(vec![FieldValue::U8(1)])),
            ])),
        );
        let mut repeated = Message::new("q", 1, vec![0xff, 0]);
        repeated
            .headers
            .0
            .push(("h".into(), FieldValue::string("first")));
        repeated
            .headers
            .0
            .push(("x-death".into(), FieldValue::Void));
        repeated
            .headers
            .0
            .push(("h".into(), FieldValue::LongString(vec![0xff].into())));
        let mut wrapped = Message::new("q", 2, b"x".to_vec());
        wrapped.headers.insert("$type", FieldValue::string("table"));
        for m in [plain, typed, repeated, wrapped] {
            assert_eq!(message_key(&m), key_as_first_made(&m), "{:?}", m.headers);
        }
        // And one key pinned to its value, in case both ever change together.
        let pinned = Message::new("q", 0, b"pinned".to_vec());
        assert_eq!(message_key(&pinned), "bf31b148cd1a5d2c");
    }
}
