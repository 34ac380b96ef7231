//! The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the datum;
//! Protobuf puts the message-index path between the two (a zigzag varint count, then that
//! many zigzag varint indexes; a single 0 byte stands for the first message, `[0]`).

use super::DecodeError;

/// A framed body split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framing<'a> {
    pub id: u32,
    /// Protobuf only: the path of message indexes into the schema's messages.
    pub indexes: Option<Vec<i32>>,
    /// The datum after the framing.
    pub rest: &'a [u8],
}

/// Split `body` into its Confluent framing and datum; `protobuf` reads the message indexes.
pub fn read_framing(body: &[u8], protobuf: bool) -> Result<Framing<'_>, DecodeError> {
    let bad = |why: String| DecodeError::Framing(why);
    match body.first() {
        None => return Err(bad("empty body".into())),
        Some(0) => {}
        Some(b) => return Err(bad(format!("first byte is {b:#04x}, not the magic byte 0"))),
    }
    let id_bytes: [u8; 4] = body
        .get(1..5)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(format!("{} bytes, too short for a schema id", body.len())))?;
    let id = u32::from_be_bytes(id_bytes);
    let mut rest = &body[5..];
    let indexes = if protobuf {
        let count = read_zigzag(&mut rest)
            .ok_or_else(|| bad("message-index count: truncated varint".into()))?;
        if count == 0 {
            Some(vec![0])
        } else {
            let count = usize::try_from(count)
                .ok()
                .filter(|&c| c <= rest.len())
                .ok_or_else(|| bad(format!("message-index count {count} does not fit the body")))?;
            let mut path = Vec::with_capacity(count);
            for n in 0..count {
                let i = read_zigzag(&mut rest)
                    .ok_or_else(|| bad(format!("message index {n}: truncated varint")))?;
                path.push(
                    i32::try_from(i).map_err(|_| bad(format!("message index {i} out of range")))?,
                );
            }
            Some(path)
        }
    } else {
        None
    };
    Ok(Framing { id, indexes, rest })
}

/// A zigzag-encoded varint of at most 64 bits, advancing `input`; `None` when it is
/// truncated or longer than ten bytes.
fn read_zigzag(input: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for (n, &b) in input.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * n);
        if b & 0x80 == 0 {
            *input = &input[n + 1..];
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_id_is_big_endian_after_the_magic_byte() {
        let f = read_framing(&[0, 0, 0, 1, 2, 9, 9], false).unwrap();
        assert_eq!(f.id, 258);
        assert_eq!(f.rest, &[9, 9]);
        assert_eq!(f.indexes, None);
    }

    #[test]
    fn a_single_zero_stands_for_the_first_message() {
        let f = read_framing(&[0, 0, 0, 0, 7, 0, 42], true).unwrap();
        assert_eq!(f.indexes, Some(vec![0]));
        assert_eq!(f.rest, &[42]);
    }

    #[test]
    fn message_indexes_are_zigzag_varints_after_their_count() {
        // count 2 (zigzag 4), then 1 (2) and 300 (600 = 0xd8 0x04).
        let f = read_framing(&[0, 0, 0, 0, 7, 4, 2, 0xd8, 0x04, 1], true).unwrap();
        assert_eq!(f.indexes, Some(vec![1, 300]));
        assert_eq!(f.rest, &[1]);
    }

    #[test]
    fn truncated_or_unframed_bodies_say_why() {
        let e = read_framing(&[0, 0, 0, 0, 7, 4, 0x82, 0x83], true).unwrap_err();
        assert!(e.to_string().contains("truncated varint"), "{e}");
        let e = read_framing(&[0, 0, 0, 0, 7, 0xff], true).unwrap_err();
        assert!(e.to_string().contains("truncated varint"), "{e}");
        let e = read_framing(&[0, 1], false).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
        let e = read_framing(b"{}", false).unwrap_err();
        assert!(e.to_string().contains("not the magic byte"), "{e}");
        let e = read_framing(&[0, 0, 0, 0, 7, 0xfe, 0xff, 0xff, 0xff, 0x0f], true).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
    }
}
