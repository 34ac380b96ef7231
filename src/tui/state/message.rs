//! The message view: one message, its properties and headers beside its payload.

use crate::format::decode::{DecodeError, Decoded, Decoder};
use crate::model::Message;
use std::sync::Arc;

/// Payloads up to this size are pretty-printed as JSON; larger ones are shown raw.
pub const PRETTY_LIMIT: usize = 2 * 1024 * 1024;
/// Body text is cut into display lines of at most this many characters.
pub const LINE_CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// What is inside, when the decoder finds something; else JSON, text or hex.
    Auto,
    /// What the decoder found inside (see `format::decode`), or why it found nothing.
    Decoded,
    Json,
    Text,
    Hex,
}

impl PayloadMode {
    pub fn label(self) -> &'static str {
        match self {
            PayloadMode::Auto => "auto",
            PayloadMode::Decoded => "decoded",
            PayloadMode::Json => "json",
            PayloadMode::Text => "text",
            PayloadMode::Hex => "hex",
        }
    }
}

/// What the payload pane shows once the mode is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// The decoded value, pretty-printed as JSON.
    Decoded,
    Json,
    Text,
    Hex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Meta,
    Payload,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageDetail {
    pub msg: Option<Message>,
    /// What the decoder made of the payload when the message opened (`None`: nothing to
    /// decode).
    pub decoded: Option<Result<Decoded, DecodeError>>,
    pub mode: PayloadMode,
    /// Resolved kind and its display lines (empty for hex, which is drawn on demand).
    pub body_kind: BodyKind,
    pub body: Vec<String>,
    /// Properties, headers and dead-letter history as display lines.
    pub meta: Vec<String>,
    pub pane: Pane,
    pub meta_scroll: usize,
    pub body_scroll: usize,
    pub wrap: bool,
}

/// The profile's decoder, shared by every message the view opens. Two are equal when they
/// are the same decoder.
#[derive(Clone, Default)]
pub struct Decoding(pub Arc<Decoder>);

impl PartialEq for Decoding {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Decoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoding")
    }
}
