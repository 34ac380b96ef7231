//! The message view: one message, its properties and headers beside its payload.

use crate::model::Message;

/// Payloads up to this size are pretty-printed as JSON; larger ones are shown raw.
pub const PRETTY_LIMIT: usize = 2 * 1024 * 1024;
/// Body text is cut into display lines of at most this many characters.
pub const LINE_CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    Auto,
    Json,
    Text,
    Hex,
}

impl PayloadMode {
    pub fn label(self) -> &'static str {
        match self {
            PayloadMode::Auto => "auto",
            PayloadMode::Json => "json",
            PayloadMode::Text => "text",
            PayloadMode::Hex => "hex",
        }
    }
}

/// What the payload pane shows once the mode is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
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
