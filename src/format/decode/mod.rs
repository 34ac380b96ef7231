//! Reading what is inside a payload: compressed bodies (gzip, deflate, zstd), MessagePack,
//! CBOR, JSON, Avro and Protobuf (Confluent-framed with a schema id, or bare with a local
//! `.avsc`, `.proto` or descriptor set), turned into a JSON value for `peek --json` and the
//! other front ends. Pure: the schemas come from a [`SchemaSource`] that config fills from
//! local files now and a registry client can fill later; nothing here touches the network
//! or the disk (a `.proto`'s imports are opened by the file resolver config hands in).
//!
//! Every failure is a [`DecodeError`] with a reason for that message alone; the payload bytes
//! are never changed, replaced or dropped (the record keeps `payload` as it was).

mod avro;
mod cbor;
mod compress;
mod msgpack;
mod protobuf;
mod wire;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use compress::Compression;
pub use protobuf::Protobuf;
pub use wire::{Framing, read_framing};

/// Bodies (after decompression) larger than this are not decoded. The worst case is a
/// MessagePack array of one-byte integers: measured at 470 MB peak for a 4 MiB body (the
/// reader's values, then the JSON ones), so the limit is 1 MiB, about 120 MB at worst.
pub const DECODE_LIMIT: usize = 1 << 20;

/// A payload or key format a queue or topic can be mapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Avro,
    #[serde(alias = "messagepack")]
    Msgpack,
    Cbor,
    #[serde(alias = "proto")]
    Protobuf,
    /// UTF-8 text, shown as a JSON string (a decompressed body that is not JSON).
    Text,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Avro => "avro",
            Format::Msgpack => "msgpack",
            Format::Cbor => "cbor",
            Format::Protobuf => "protobuf",
            Format::Text => "text",
        }
    }

    /// The format an AMQP `content_type` names, if it names one of ours.
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" | "text/json" => Some(Format::Json),
            "application/msgpack"
            | "application/x-msgpack"
            | "application/vnd.msgpack"
            | "application/messagepack" => Some(Format::Msgpack),
            "application/cbor" => Some(Format::Cbor),
            "avro/binary" | "application/avro" | "application/vnd.apache.avro+binary" => {
                Some(Format::Avro)
            }
            "application/x-protobuf"
            | "application/protobuf"
            | "application/vnd.google.protobuf"
            | "application/x-google-protobuf" => Some(Format::Protobuf),
            s if s.ends_with("+json") => Some(Format::Json),
            _ => None,
        }
    }

    /// The format a schema file holds, by its extension: Protobuf for `.proto` and
    /// descriptor sets, Avro for the rest (`.avsc`).
    pub fn of_schema_file(file: &str) -> Format {
        let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("proto" | "desc" | "pb" | "binpb" | "protoset") => Format::Protobuf,
            _ => Format::Avro,
        }
    }
}

/// How one queue's or topic's payloads (or keys) are read: from the profile's `[decode]`
/// table, e.g. `orders = { format = "avro", schema = "orders.avsc" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unset: Avro or Protobuf when a schema is named (by its file's extension), else by
    /// content type, magic bytes, or not at all. A message's own `content_type`, when it
    /// names a format, wins over this.
    pub format: Option<Format>,
    /// A local schema file (`.avsc`, `.proto`, or a descriptor set `.desc`, `.pb`,
    /// `.binpb`, `.protoset`), relative to the config file.
    pub schema: Option<String>,
    /// Protobuf: the message type a bare payload holds (`pkg.Order`, or `Order` when that
    /// is unique in the file). Confluent-framed payloads name theirs by message index.
    pub message: Option<String>,
    /// Protobuf: more directories `.proto` imports are looked up in (after the schema
    /// file's own), relative to the config file.
    #[serde(default)]
    pub includes: Vec<String>,
    /// How the schema id is found: `confluent` (magic byte 0 and a 4-byte id), `none`
    /// (a bare datum), or unset: Confluent framing when the id is known, bare otherwise.
    pub framing: Option<FramingRule>,
    /// How keys are read, when differently from the payload.
    pub key: Option<Box<Rule>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FramingRule {
    Confluent,
    None,
}

/// A schema mqscope can decode with, and where it came from.
#[derive(Debug)]
pub struct Schema {
    pub kind: SchemaKind,
    /// The registry subject, or the file it was read from.
    pub origin: Origin,
}

#[derive(Debug)]
pub enum SchemaKind {
    Avro(apache_avro::Schema),
    Protobuf(Protobuf),
    /// A JSON Schema: the payload is JSON text, read as it is (the schema is kept, not
    /// checked against).
    JsonSchema(Value),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Subject(String),
    File(String),
    /// A registry's schema whose subject it did not say.
    Id(u32),
}

impl Schema {
    /// An Avro schema from its JSON text (an `.avsc` file's or a registry's answer).
    pub fn avro(text: &str, origin: Origin) -> Result<Schema, DecodeError> {
        let schema = apache_avro::Schema::parse_str(text).map_err(|e| DecodeError::BadSchema {
            origin: origin.shown(),
            reason: e.to_string(),
        })?;
        Ok(Schema {
            kind: SchemaKind::Avro(schema),
            origin,
        })
    }

    fn format(&self) -> Format {
        match self.kind {
            SchemaKind::Avro(_) => Format::Avro,
            SchemaKind::Protobuf(_) => Format::Protobuf,
            SchemaKind::JsonSchema(_) => Format::Json,
        }
    }

    /// A schema as a registry gives it: its `schemaType` (`AVRO` when the registry leaves
    /// it out), its text, and the texts of the schemas it references, by reference name
    /// (every one, transitively). An Avro schema's named types from the references are
    /// written into it, so that it reads alone.
    pub fn from_registry(
        schema_type: &str,
        text: &str,
        references: &[(String, String)],
        origin: Origin,
    ) -> Result<Schema, DecodeError> {
        let bad = |reason: String| DecodeError::BadSchema {
            origin: origin.shown(),
            reason,
        };
        let kind = match schema_type.to_ascii_uppercase().as_str() {
            "" | "AVRO" if references.is_empty() => return Schema::avro(text, origin),
            "" | "AVRO" => {
                let texts = references.iter().map(|(_, t)| t.as_str());
                let (mut schema, named) = apache_avro::Schema::parse_str_with_list(text, texts)
                    .map_err(|e| bad(e.to_string()))?;
                schema.denormalize(&named).map_err(|e| bad(e.to_string()))?;
                SchemaKind::Avro(schema)
            }
            "JSON" => SchemaKind::JsonSchema(
                serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?,
            ),
            "PROTOBUF" => return Schema::protobuf_from_text(text, references, origin),
            other => {
                return Err(bad(format!(
                    "schema type \"{other}\" is not one mqscope reads"
                )));
            }
        };
        Ok(Schema { kind, origin })
    }
}

impl Origin {
    fn shown(&self) -> String {
        match self {
            Origin::Subject(s) => format!("subject {s}"),
            Origin::File(f) => f.clone(),
            Origin::Id(id) => format!("schema id {id}"),
        }
    }
}

/// Where schemas come from. Lookups are synchronous and answer from what is at hand: a
/// registry client fetches an id the decoder reported as [`DecodeError::UnknownSchemaId`]
/// (see [`DecodeError::unknown_id`]), adds it, and decodes the message again.
pub trait SchemaSource: Send + Sync {
    /// The schema registered under a Confluent schema id.
    fn by_id(&self, id: u32) -> Option<Arc<Schema>>;
    /// The schema mapped to a queue or topic (the key's when `key`).
    fn for_queue(&self, queue: &str, key: bool) -> Option<Arc<Schema>>;
    /// Why the schema of `id` is not at hand, when a registry was asked for it and failed
    /// (unreachable, not found, an answer that is no schema). A body framed with such an
    /// id is decoded, to say this beside it.
    fn missing(&self, _id: u32) -> Option<String> {
        None
    }
}

/// Schemas read from local files: by queue (the profile's `[decode]` rules) and by id.
#[derive(Debug, Default)]
pub struct LocalSchemas {
    by_queue: BTreeMap<String, Arc<Schema>>,
    key_by_queue: BTreeMap<String, Arc<Schema>>,
    by_id: BTreeMap<u32, Arc<Schema>>,
}

impl LocalSchemas {
    pub fn add_queue(&mut self, queue: &str, key: bool, schema: Schema) {
        let map = if key {
            &mut self.key_by_queue
        } else {
            &mut self.by_queue
        };
        map.insert(queue.to_string(), Arc::new(schema));
    }

    pub fn add_id(&mut self, id: u32, schema: Schema) {
        self.by_id.insert(id, Arc::new(schema));
    }
}

impl SchemaSource for LocalSchemas {
    fn by_id(&self, id: u32) -> Option<Arc<Schema>> {
        self.by_id.get(&id).cloned()
    }

    fn for_queue(&self, queue: &str, key: bool) -> Option<Arc<Schema>> {
        let map = if key {
            &self.key_by_queue
        } else {
            &self.by_queue
        };
        map.get(queue).cloned()
    }
}

/// Why one payload or key could not be decoded: said beside the raw payload, per message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("body of {size} bytes is over the {limit}-byte decode limit: not decoded")]
    TooLarge { size: usize, limit: usize },
    #[error("{codec} body decompressed past {limit} bytes: cut there, not decoded")]
    Cut { codec: &'static str, limit: usize },
    #[error("{codec} body does not decompress: {reason}")]
    Decompress { codec: &'static str, reason: String },
    #[error("content_encoding \"{0}\" is not one mqscope reads (gzip, deflate or zstd)")]
    UnknownEncoding(String),
    #[error("Confluent framing: {0}")]
    Framing(String),
    #[error("schema id {0} is unknown (no registry or local file gives it)")]
    UnknownSchemaId(u32),
    #[error("schema id {id}: {reason}")]
    Registry { id: u32, reason: String },
    #[error("no schema for {format}: map the queue or topic to a schema file")]
    NoSchema { format: &'static str },
    #[error("schema {origin}: {reason}")]
    BadSchema { origin: String, reason: String },
    #[error("{format} does not match {what}: {reason}")]
    Mismatch {
        format: &'static str,
        what: String,
        reason: String,
    },
    #[error("{format}: {extra} bytes left over after the value")]
    Trailing { format: &'static str, extra: usize },
}

impl DecodeError {
    /// The schema id a registry client should fetch before decoding again.
    pub fn unknown_id(&self) -> Option<u32> {
        match self {
            DecodeError::UnknownSchemaId(id) => Some(*id),
            _ => None,
        }
    }

    fn mismatch(format: Format, what: &str, reason: impl ToString) -> Self {
        DecodeError::Mismatch {
            format: format.name(),
            what: what.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// How a value was decoded: `decoded_as` in a record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecodedAs {
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<&'static str>,
    /// How the compression was recognised: `content_encoding` or `magic bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression_from: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The Protobuf message type, by full name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl DecodedAs {
    /// How it was read, for people: `avro, gzip (by magic bytes), schema id 42, schema
    /// orders-value`.
    pub fn summary(&self) -> String {
        let mut line = self.format.to_string();
        if let (Some(c), Some(from)) = (self.compression, self.compression_from) {
            line.push_str(&format!(", {c} (by {from})"));
        }
        if let Some(id) = self.schema_id {
            line.push_str(&format!(", schema id {id}"));
        }
        if let Some(s) = self.subject.as_ref().or(self.file.as_ref()) {
            line.push_str(&format!(", schema {s}"));
        }
        if let Some(m) = &self.message {
            line.push_str(&format!(", message {m}"));
        }
        line
    }

    fn new(format: Format) -> Self {
        DecodedAs {
            format: format.name(),
            compression: None,
            compression_from: None,
            schema_id: None,
            subject: None,
            file: None,
            message: None,
        }
    }
}

/// A payload or key read into JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub value: Value,
    pub decoded_as: DecodedAs,
}

/// What a decoder needs of a message: the bytes and the AMQP hints.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input<'a> {
    pub bytes: &'a [u8],
    pub queue: &'a str,
    pub content_type: Option<&'a str>,
    pub content_encoding: Option<&'a str>,
    /// A Kafka key rather than a payload.
    pub key: bool,
}

impl<'a> Input<'a> {
    /// A message's payload, with its AMQP hints.
    pub fn payload(msg: &'a crate::model::Message) -> Self {
        Input {
            bytes: &msg.payload,
            queue: &msg.queue,
            content_type: msg.properties.content_type.as_deref(),
            content_encoding: msg.properties.content_encoding.as_deref(),
            key: false,
        }
    }

    /// A message's key (Kafka), read by the key rule; the AMQP hints are the payload's.
    pub fn key(msg: &'a crate::model::Message) -> Self {
        Input {
            bytes: msg.key.as_deref().unwrap_or_default(),
            queue: &msg.queue,
            content_type: None,
            content_encoding: None,
            key: true,
        }
    }
}

/// Decodes payloads and keys by the profile's rules and a schema source.
pub struct Decoder {
    rules: BTreeMap<String, Rule>,
    schemas: Arc<dyn SchemaSource>,
    limit: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(BTreeMap::new(), Arc::new(LocalSchemas::default()))
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("rules", &self.rules)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    pub fn new(rules: BTreeMap<String, Rule>, schemas: Arc<dyn SchemaSource>) -> Self {
        Decoder {
            rules,
            schemas,
            limit: DECODE_LIMIT,
        }
    }

    /// A different decode limit (tests, and a setting later).
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    fn rule(&self, queue: &str, key: bool) -> Option<&Rule> {
        let rule = self.rules.get(queue)?;
        if key { rule.key.as_deref() } else { Some(rule) }
    }

    /// Decode one payload or key. `None`: nothing to decode (plain text or bytes, no rule, no
    /// hint, or JSON that is not compressed: the payload already shows it), so the record
    /// stays as it was.
    pub fn decode(&self, input: &Input<'_>) -> Option<Result<Decoded, DecodeError>> {
        let rule = self.rule(input.queue, input.key);
        let encoding = input
            .content_encoding
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("identity"));
        let compression = match encoding {
            Some(e) => match Compression::from_encoding(e) {
                Some(c) => Some((c, "content_encoding")),
                None => return Some(Err(DecodeError::UnknownEncoding(e.to_string()))),
            },
            None => Compression::from_magic(input.bytes).map(|c| (c, "magic bytes")),
        };
        // The message's own content type first (it is about this message; the rule is about
        // the queue), then the rule; a rule naming a schema file and no format means Avro.
        let format = input
            .content_type
            .and_then(Format::from_content_type)
            .or_else(|| rule.and_then(Rule::format));
        let framed = format.is_none()
            && rule.is_none()
            && compression.is_none()
            && read_framing(input.bytes, false).is_ok_and(|f| {
                self.schemas.by_id(f.id).is_some() || self.schemas.missing(f.id).is_some()
            });
        // Plain JSON is already readable as the payload: decoding it again would only double
        // the record (and the time `peek --json` takes).
        let plain =
            matches!(format, None | Some(Format::Json | Format::Text)) && compression.is_none();
        if plain && !framed {
            return None;
        }
        Some(self.decode_with(input, rule, format, compression))
    }

    fn decode_with(
        &self,
        input: &Input<'_>,
        rule: Option<&Rule>,
        format: Option<Format>,
        compression: Option<(Compression, &'static str)>,
    ) -> Result<Decoded, DecodeError> {
        if input.bytes.len() > self.limit && compression.is_none() {
            return Err(DecodeError::TooLarge {
                size: input.bytes.len(),
                limit: self.limit,
            });
        }
        let inflated;
        let body = match compression {
            Some((c, _)) => {
                inflated = c.decompress(input.bytes, self.limit)?;
                &inflated[..]
            }
            None => input.bytes,
        };
        let format = match format {
            Some(f) => f,
            // A compressed body of no stated format: JSON when it is, else text.
            None if compression.is_some() => match json(body) {
                Ok(d) => return Ok(with_compression(d, compression)),
                Err(_) => Format::Text,
            },
            // Framed with a schema id (`decode` checked): read with that id's schema,
            // whatever it is (Avro, Protobuf, JSON Schema).
            None => {
                let format = read_framing(body, false)
                    .ok()
                    .and_then(|f| self.schemas.by_id(f.id))
                    .map_or(Format::Avro, |s| s.format());
                let decoded = self.with_schema(format, body, input, rule)?;
                return Ok(with_compression(decoded, compression));
            }
        };
        let decoded = match format {
            Format::Json => json(body)?,
            Format::Text => text(body)?,
            Format::Msgpack => msgpack::decode(body)?,
            Format::Cbor => cbor::decode(body)?,
            Format::Avro | Format::Protobuf => self.with_schema(format, body, input, rule)?,
        };
        Ok(with_compression(decoded, compression))
    }

    /// A body read with a schema: Avro or Protobuf, bare or Confluent-framed.
    fn with_schema(
        &self,
        format: Format,
        body: &[u8],
        input: &Input<'_>,
        rule: Option<&Rule>,
    ) -> Result<Decoded, DecodeError> {
        let protobuf = format == Format::Protobuf;
        let framing = rule.and_then(|r| r.framing);
        let mapped = self.schemas.for_queue(input.queue, input.key);
        let (schema, id, indexes, datum) = match framing {
            Some(FramingRule::None) => (mapped, None, None, body),
            Some(FramingRule::Confluent) => {
                let f = read_framing(body, protobuf)?;
                let schema = self.schemas.by_id(f.id).or(mapped);
                (schema, Some(f.id), f.indexes, f.rest)
            }
            None => match read_framing(body, protobuf) {
                Ok(f) => match self.schemas.by_id(f.id) {
                    Some(s) => (Some(s), Some(f.id), f.indexes, f.rest),
                    // Framed by the look of it, but an id nobody knows: the mapped file
                    // reads the bare body; with no file, the id is what is missing.
                    None if mapped.is_none() => return Err(self.unknown(f.id)),
                    // A Protobuf message cannot start with a 0 byte (field number 0 does
                    // not exist), so that body is framed: its indexes pick the message.
                    None if protobuf => (mapped, Some(f.id), f.indexes, f.rest),
                    None => (mapped, None, None, body),
                },
                Err(_) => (mapped, None, None, body),
            },
        };
        let schema = match (schema, id) {
            (Some(s), _) => s,
            (None, Some(id)) => return Err(self.unknown(id)),
            (None, None) => {
                return Err(DecodeError::NoSchema {
                    format: format.name(),
                });
            }
        };
        let origin = schema.origin.shown();
        let mut decoded_as = DecodedAs::new(schema.format());
        let value = match &schema.kind {
            SchemaKind::Avro(s) if !protobuf => avro::decode(s, datum, &origin)?,
            SchemaKind::Protobuf(p) if protobuf => {
                let (value, message) = protobuf::decode(p, indexes.as_deref(), datum, &origin)?;
                decoded_as.message = Some(message);
                value
            }
            SchemaKind::JsonSchema(_) if !protobuf => json(datum)?.value,
            _ => {
                return Err(DecodeError::BadSchema {
                    origin,
                    reason: format!(
                        "it is {}, and the body was taken for {}",
                        schema.format().name(),
                        format.name()
                    ),
                });
            }
        };
        decoded_as.schema_id = id;
        match &schema.origin {
            Origin::Subject(s) => decoded_as.subject = Some(s.clone()),
            Origin::File(f) => decoded_as.file = Some(f.clone()),
            Origin::Id(_) => {}
        }
        Ok(Decoded { value, decoded_as })
    }

    /// An id no schema is at hand for: the registry's reason when it was asked.
    fn unknown(&self, id: u32) -> DecodeError {
        match self.schemas.missing(id) {
            Some(reason) => DecodeError::Registry { id, reason },
            None => DecodeError::UnknownSchemaId(id),
        }
    }
}

impl Rule {
    /// The format the rule names, or implies by its schema file or message type.
    fn format(&self) -> Option<Format> {
        self.format
            .or(self.schema.as_deref().map(Format::of_schema_file))
            .or(self.message.as_ref().map(|_| Format::Protobuf))
    }
}

fn with_compression(
    mut decoded: Decoded,
    compression: Option<(Compression, &'static str)>,
) -> Decoded {
    if let Some((c, from)) = compression {
        decoded.decoded_as.compression = Some(c.name());
        decoded.decoded_as.compression_from = Some(from);
    }
    decoded
}

impl Decoded {
    fn new(value: Value, format: Format) -> Self {
        Decoded {
            value,
            decoded_as: DecodedAs::new(format),
        }
    }
}

/// One whole value of `format`, read by `read` (which advances the slice it is given):
/// bytes left after it mean the body is not one such value.
fn whole<T>(
    format: Format,
    body: &[u8],
    read: impl FnOnce(&mut &[u8]) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut rest = body;
    let value = read(&mut rest)?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing {
            format: format.name(),
            extra: rest.len(),
        });
    }
    Ok(value)
}

/// UTF-8 text as a JSON string.
fn text(body: &[u8]) -> Result<Decoded, DecodeError> {
    let s =
        std::str::from_utf8(body).map_err(|e| DecodeError::mismatch(Format::Text, "UTF-8", e))?;
    Ok(Decoded::new(Value::String(s.to_string()), Format::Text))
}

/// JSON text, whole.
fn json(body: &[u8]) -> Result<Decoded, DecodeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::mismatch(Format::Json, "JSON", e))?;
    Ok(Decoded::new(value, Format::Json))
}

/// Bytes inside a decoded value (MessagePack bin, CBOR bytes, Avro bytes and fixed): a
/// string when they are UTF-8 text, else `{"base64": "..."}`, so JSON can carry them.
fn bytes_value(bytes: &[u8]) -> Value {
    use base64::Engine;
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => {
            let mut o = serde_json::Map::new();
            o.insert(
                "base64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
            Value::Object(o)
        }
    }
}

/// A float as JSON: NaN and the infinities, which JSON has no number for, as text.
fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(f.to_string()))
}

/// A time inside a decoded value: RFC 3339 in UTC, with as many fraction digits as it has
/// (a decoded value keeps its precision; mqscope's own times are milliseconds).
fn time_text(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A map as a JSON object, its keys and values read by `to_json`. MessagePack and CBOR
/// allow any value as a key: one that is not text is keyed by its JSON text.
fn object_of<T>(pairs: Vec<(T, T)>, to_json: impl Fn(T) -> Value) -> Value {
    let key_text = |k| match to_json(k) {
        Value::String(s) => s,
        other => other.to_string(),
    };
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (key_text(k), to_json(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_protobuf;
