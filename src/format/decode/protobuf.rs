//! Protobuf messages into JSON by the proto3 JSON mapping (as protobuf's own `json_format`
//! writes it with `preserving_proto_field_name`): fields by their `.proto` names, 64-bit
//! integers as strings, enums by name, bytes as base64, and the well-known types
//! (Timestamp, Duration, Struct, wrappers, Any) as their JSON forms. Schemas are compiled
//! at run time with protox from `.proto` text (no `protoc`), or read from descriptor sets.
//!
//! Which message a payload holds: the Confluent message-index path when the body is
//! framed, else the message the rule names.

use super::{DecodeError, Origin, Schema, SchemaKind, float_value};
use base64::Engine;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FileDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, SerializeOptions, Value as Pv,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};
use serde_json::{Map, Value};

/// A compiled Protobuf schema: the file whose messages the Confluent indexes count, and
/// the message a bare payload is read as, when one is named.
#[derive(Debug)]
pub struct Protobuf {
    file: FileDescriptor,
    message: Option<MessageDescriptor>,
}

impl Protobuf {
    /// The file's message types, nested ones too, by full name: what a rule's `message`
    /// may name.
    pub fn message_names(&self) -> Vec<String> {
        fn walk(m: MessageDescriptor, out: &mut Vec<String>) {
            if m.is_map_entry() {
                return;
            }
            out.push(m.full_name().to_string());
            for c in m.child_messages() {
                walk(c, out);
            }
        }
        let mut out = Vec::new();
        for m in self.file.messages() {
            walk(m, &mut out);
        }
        out
    }

    /// The message named in the rule, if any.
    pub fn message(&self) -> Option<&str> {
        self.message.as_ref().map(MessageDescriptor::full_name)
    }

    fn select(&self, indexes: Option<&[i32]>) -> Result<MessageDescriptor, String> {
        let Some(path) = indexes else {
            return self.message.clone().ok_or_else(|| {
                format!(
                    "no message type to read a bare payload as: name one with message = \"...\" ({})",
                    self.message_names().join(", ")
                )
            });
        };
        let bad = |i: i32, within: &str, n: usize| {
            format!("message index {i} is not in {within} ({n} message types there)")
        };
        let mut path = path.iter().copied();
        let first = path.next().ok_or("empty message-index path")?;
        let mut m = usize::try_from(first)
            .ok()
            .and_then(|i| self.file.messages().nth(i))
            .ok_or_else(|| bad(first, self.file.name(), self.file.messages().len()))?;
        for i in path {
            m = usize::try_from(i)
                .ok()
                .and_then(|n| m.child_messages().nth(n))
                .ok_or_else(|| bad(i, m.full_name(), m.child_messages().len()))?;
        }
        Ok(m)
    }
}

impl Schema {
    /// A Protobuf schema from a compiled pool: `file` is the one Confluent message indexes
    /// count in, `message` the type bare payloads are read as (a full name, or a name
    /// unique in the file).
    pub fn protobuf(
        pool: DescriptorPool,
        file: &str,
        message: Option<&str>,
        origin: Origin,
    ) -> Result<Schema, DecodeError> {
        let bad = |reason| bad_schema(&origin, reason);
        let file = pool
            .get_file_by_name(file)
            .ok_or_else(|| bad(format!("no file {file} in the compiled schema")))?;
        let mut proto = Protobuf {
            file,
            message: None,
        };
        if let Some(name) = message {
            let found = pool.get_message_by_name(name).or_else(|| {
                let mut same = proto
                    .message_names()
                    .into_iter()
                    .filter(|n| n.rsplit('.').next() == Some(name));
                match (same.next(), same.next()) {
                    (Some(only), None) => pool.get_message_by_name(&only),
                    _ => None,
                }
            });
            proto.message = Some(found.ok_or_else(|| {
                bad(format!(
                    "no message type {name}; the file has {}",
                    proto.message_names().join(", ")
                ))
            })?);
        }
        Ok(Schema {
            kind: SchemaKind::Protobuf(proto),
            origin,
        })
    }

    /// A Protobuf schema compiled from `.proto` files that `resolver` opens (a directory's,
    /// or texts held in memory), `main` being the one mapped. Imports of the well-known
    /// types (`google/protobuf/timestamp.proto` and the rest) need no file.
    pub fn protobuf_compiled(
        main: &str,
        resolver: impl FileResolver + 'static,
        message: Option<&str>,
        origin: Origin,
    ) -> Result<Schema, DecodeError> {
        let mut chain = ChainFileResolver::new();
        chain.add(resolver);
        chain.add(GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(chain);
        compiler.include_imports(true);
        compiler
            .open_file(main)
            .map_err(|e| bad_schema(&origin, compile_error(&e)))?;
        Schema::protobuf(compiler.descriptor_pool(), main, message, origin)
    }

    /// A Protobuf schema from a schema registry's answer and its references' (by import
    /// name), compiled in memory. Each is `.proto` text (what a registry serves by
    /// default) or a base64 `FileDescriptorProto` (what confluent-kafka's
    /// ProtobufSerializer registers, and a registry serves with `?format=serialized`).
    pub fn protobuf_from_text(
        text: &str,
        references: &[(String, String)],
        origin: Origin,
    ) -> Result<Schema, DecodeError> {
        // The main text needs a file name no reference uses.
        let mut main = "schema.proto".to_string();
        while references.iter().any(|(n, _)| *n == main) {
            main.insert(0, '_');
        }
        let mut texts = Texts(references.to_vec());
        texts.0.push((main.clone(), text.to_string()));
        Schema::protobuf_compiled(&main, texts, None, origin)
    }

    /// A Protobuf schema from a descriptor set (`protoc --descriptor_set_out`, `buf build`)
    /// with its imports included. The messages Confluent indexes count are the named
    /// message's file's, or with none named the set's last file (the one protoc was given).
    pub fn protobuf_descriptor_set(
        bytes: &[u8],
        message: Option<&str>,
        origin: Origin,
    ) -> Result<Schema, DecodeError> {
        let bad = |reason| bad_schema(&origin, reason);
        let pool = DescriptorPool::decode(bytes)
            .map_err(|e| bad(format!("not a readable descriptor set: {e}")))?;
        let file = match message.and_then(|m| pool.get_message_by_name(m)) {
            Some(m) => m.parent_file(),
            None => pool
                .files()
                .last()
                .ok_or_else(|| bad("the descriptor set holds no file".into()))?,
        };
        let name = file.name().to_string();
        Schema::protobuf(pool, &name, message, origin)
    }
}

fn bad_schema(origin: &Origin, reason: String) -> DecodeError {
    DecodeError::BadSchema {
        origin: origin.shown(),
        reason,
    }
}

/// `.proto` texts held in memory, by import name.
pub(super) struct Texts(pub(super) Vec<(String, String)>);

impl FileResolver for Texts {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((n, text)) => match serialized_descriptor(text) {
                Some(mut file) => {
                    // Named as it is imported, whatever name it was registered under.
                    file.name = Some(n.clone());
                    Ok(File::from_file_descriptor_proto(file))
                }
                None => File::from_source(n, text),
            },
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// A schema registered as a base64 `FileDescriptorProto`. `.proto` text never reads as
/// one: its spaces, `;` and `{` are not base64.
fn serialized_descriptor(text: &str) -> Option<prost_reflect::prost_types::FileDescriptorProto> {
    use prost_reflect::prost::Message;
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    prost_reflect::prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()
}

/// A compile error with the file, line and column it points at, when it points.
fn compile_error(e: &protox::Error) -> String {
    use miette::Diagnostic;
    let at = (|| {
        let label = e.labels()?.next()?;
        let span = e.source_code()?.read_span(label.inner(), 0, 0).ok()?;
        let name = span
            .name()
            .map(str::to_string)
            .or(e.file().map(str::to_string));
        Some(format!(
            "{}:{}:{}: ",
            name.unwrap_or_default(),
            span.line() + 1,
            span.column() + 1
        ))
    })();
    format!("{}{e}", at.unwrap_or_default())
}

/// One payload read as the message `indexes` (framed) or the schema's rule names (bare).
/// Returns the JSON value and the message's full name.
pub(super) fn decode(
    schema: &Protobuf,
    indexes: Option<&[i32]>,
    datum: &[u8],
    origin: &str,
) -> Result<(Value, String), DecodeError> {
    let mismatch = |what: String, reason: String| DecodeError::Mismatch {
        format: "protobuf",
        what,
        reason,
    };
    let desc = schema
        .select(indexes)
        .map_err(|reason| mismatch(origin.to_string(), reason))?;
    let name = desc.full_name().to_string();
    let what = format!("{name} ({origin})");
    // prost's decoder bounds nesting (100 levels of messages and groups), so a hostile
    // payload ends in an error, not a stack overflow. The worst case for memory is a 1 MiB
    // packed field of one-byte numbers: measured at 146 MB peak (a million prost values,
    // then the JSON ones); a million empty nested messages, 79 MB.
    let msg = DynamicMessage::decode(desc, datum).map_err(|e| {
        let text = e.to_string();
        let reason = text
            .strip_prefix("failed to decode Protobuf message: ")
            .unwrap_or(&text);
        mismatch(what.clone(), reason.to_string())
    })?;
    Ok((message(&msg), name))
}

/// The options prost-reflect's serializer is given for the well-known types.
const WKT_OPTIONS: SerializeOptions = SerializeOptions::new().use_proto_field_name(true);

fn message(m: &DynamicMessage) -> Value {
    let desc = m.descriptor();
    let full = desc.full_name();
    if let Some(v) = well_known(m, full) {
        return v;
    }
    let mut out = Map::new();
    for (field, value) in m.fields() {
        out.insert(field.name().to_string(), value_json(value, &field.kind()));
    }
    Value::Object(out)
}

/// A well-known type's JSON form (a Timestamp as RFC 3339 text, a Struct as the object it
/// holds, a wrapper as its value); `None` for other messages, and for a well-known value
/// that has no JSON form (a Timestamp past year 9999, an Any of an unknown type), which
/// then reads as the plain message it is.
fn well_known(m: &DynamicMessage, full: &str) -> Option<Value> {
    let name = full.strip_prefix("google.protobuf.")?;
    match name {
        // prost-reflect would widen the f32 to f64 digits (0.1 as 0.10000000149011612).
        "FloatValue" => m.fields().next().map(|(_, v)| value_json(v, &Kind::Float)),
        "Timestamp" | "Duration" | "Struct" | "Value" | "ListValue" | "FieldMask" | "Empty"
        | "Any" | "DoubleValue" | "Int64Value" | "UInt64Value" | "Int32Value" | "UInt32Value"
        | "BoolValue" | "StringValue" | "BytesValue" => {
            let v = m
                .serialize_with_options(serde_json::value::Serializer, &WKT_OPTIONS)
                .ok()?;
            Some(if name == "Any" { v } else { sorted(v) })
        }
        _ => None,
    }
}

/// A Struct's keys in order: they come out of a hash map.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut entries: Vec<_> = o.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn value_json(v: &Pv, kind: &Kind) -> Value {
    match v {
        Pv::Bool(b) => Value::Bool(*b),
        Pv::I32(n) => Value::from(*n),
        Pv::U32(n) => Value::from(*n),
        Pv::I64(n) => Value::String(n.to_string()),
        Pv::U64(n) => Value::String(n.to_string()),
        Pv::F32(f) => float32(*f),
        Pv::F64(f) => float(*f),
        Pv::String(s) => Value::String(s.clone()),
        Pv::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Pv::EnumNumber(n) => match kind {
            Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue" => Value::Null,
            // A number the enum does not name (a newer writer's) stays a number.
            Kind::Enum(e) => e
                .get_value(*n)
                .map(|ev| Value::String(ev.name().to_string()))
                .unwrap_or_else(|| Value::from(*n)),
            _ => Value::from(*n),
        },
        Pv::Message(m) => message(m),
        Pv::List(items) => Value::Array(items.iter().map(|i| value_json(i, kind)).collect()),
        Pv::Map(entries) => {
            let of = match kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other.clone(),
            };
            // A hash map underneath: sorted by key, so the same payload always reads the same.
            let mut entries: Vec<_> = entries.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (key_text(k), value_json(v, &of)))
                    .collect(),
            )
        }
    }
}

fn key_text(k: &MapKey) -> String {
    match k {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// NaN and the infinities as the proto3 JSON mapping spells them.
fn float(f: f64) -> Value {
    if f.is_nan() {
        Value::String("NaN".into())
    } else if f.is_infinite() {
        Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else {
        float_value(f)
    }
}

/// A float as its shortest decimal (0.1, not the f64 nearest the f32 nearest 0.1).
fn float32(f: f32) -> Value {
    if !f.is_finite() {
        return float(f64::from(f));
    }
    float(f.to_string().parse().unwrap_or(f64::from(f)))
}
