//! Compressed bodies: gzip, deflate (zlib-wrapped as HTTP means it, or raw) and zstd, named
//! by AMQP `content_encoding` or recognised by their magic bytes. Output is bounded: a body
//! that inflates past the limit is cut there and said so, so a zip bomb costs the limit and
//! no more.

use super::DecodeError;
use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Deflate,
    Zstd,
}

/// The largest zstd window accepted, as a power of two: 32 MiB. zstd's decoder allocates
/// the window the frame asks for, so a hostile frame could otherwise ask for 128 MiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 25;

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
            Compression::Zstd => "zstd",
        }
    }

    /// The compression an AMQP `content_encoding` (or HTTP `Content-Encoding`) names.
    pub fn from_encoding(encoding: &str) -> Option<Compression> {
        match encoding.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Compression::Gzip),
            "deflate" | "zlib" => Some(Compression::Deflate),
            "zstd" | "zstandard" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Gzip and zstd by their magic numbers. Deflate has none worth trusting (a zlib header
    /// is two bytes that plenty of binary starts with), so it needs `content_encoding`.
    pub fn from_magic(bytes: &[u8]) -> Option<Compression> {
        match bytes {
            [0x1f, 0x8b, 0x08, ..] => Some(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Inflate `bytes`, refusing to hold more than `limit` bytes of output.
    pub fn decompress(self, bytes: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
        let failed = |e: std::io::Error| DecodeError::Decompress {
            codec: self.name(),
            reason: e.to_string(),
        };
        match self {
            Compression::Gzip => bounded(flate2::read::MultiGzDecoder::new(bytes), limit, self),
            Compression::Deflate => {
                // HTTP's "deflate" is zlib-wrapped, but raw deflate is sent under the name too.
                let zlib = bounded(flate2::read::ZlibDecoder::new(bytes), limit, self);
                match zlib {
                    Err(DecodeError::Decompress { .. }) => {
                        bounded(flate2::read::DeflateDecoder::new(bytes), limit, self)
                    }
                    other => other,
                }
            }
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::new(bytes).map_err(failed)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(failed)?;
                bounded(d, limit, self)
            }
        }
    }
}

/// Read at most `limit` bytes, and one more to know whether there was more.
fn bounded(reader: impl Read, limit: usize, codec: Compression) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Decompress {
            codec: codec.name(),
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(DecodeError::Cut {
            codec: codec.name(),
            limit,
        });
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::Write;

    /// `bytes` gzipped, for the tests here and beside.
    pub(in crate::format::decode) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn each_codec_inflates_what_it_deflated() {
        let body = br#"{"order": 7}"#;
        assert_eq!(
            Compression::Gzip.decompress(&gzip(body), 100).unwrap(),
            body
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(body).unwrap();
        let zlib = z.finish().unwrap();
        assert_eq!(Compression::Deflate.decompress(&zlib, 100).unwrap(), body);
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(body).unwrap();
        let raw = r.finish().unwrap();
        assert_eq!(Compression::Deflate.decompress(&raw, 100).unwrap(), body);
        let zst = zstd::encode_all(&body[..], 3).unwrap();
        assert_eq!(Compression::Zstd.decompress(&zst, 100).unwrap(), body);
        assert_eq!(Compression::from_magic(&zst), Some(Compression::Zstd));
        assert_eq!(
            Compression::from_magic(&gzip(body)),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_magic(body), None);
    }

    #[test]
    fn a_zip_bomb_is_cut_at_the_limit() {
        // 64 MiB of zeros compress to about 64 KiB.
        let zeros = vec![0u8; 64 << 20];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let e = Compression::Gzip.decompress(&bomb, 1 << 20).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gzip body decompressed past 1048576 bytes: cut there, not decoded"
        );
        let zst = zstd::encode_all(&zeros[..], 1).unwrap();
        let e = Compression::Zstd.decompress(&zst, 1 << 20).unwrap_err();
        assert!(matches!(e, DecodeError::Cut { codec: "zstd", .. }), "{e}");
    }

    #[test]
    fn a_truncated_body_is_a_reason_not_a_panic() {
        let g = gzip(b"hello hello hello");
        let e = Compression::Gzip
            .decompress(&g[..g.len() - 6], 100)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("gzip body does not decompress"),
            "{e}"
        );
        let e = Compression::Zstd
            .decompress(&[0x28, 0xb5, 0x2f, 0xfd, 1], 100)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("zstd body does not decompress"),
            "{e}"
        );
    }
}
