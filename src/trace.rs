//! Correlation-ID extraction, backend-neutral: which ID ties a message to its copies and
//! follow-ups. Rules are tried in order; header rules run before any payload is decoded.

use crate::model::{FieldValue, Message};
use serde::{Deserialize, Serialize};

/// One place a correlation ID can live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "name")]
pub enum Rule {
    /// The AMQP `correlation_id` property.
    Property,
    /// A header, matched case-insensitively.
    Header(String),
    /// The trace id inside a W3C `traceparent` header.
    Traceparent,
    /// A string or number in a JSON body, by JSON Pointer.
    JsonPointer(String),
    /// The Kafka record key.
    Key,
}

/// An ordered list of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extractor {
    pub rules: Vec<Rule>,
}

impl Default for Extractor {
    fn default() -> Self {
        let mut rules = vec![Rule::Property];
        rules.extend(
            [
                "correlation_id",
                "correlation-id",
                "x-correlation-id",
                "correlationId",
            ]
            .into_iter()
            .map(|h| Rule::Header(h.to_string())),
        );
        rules.push(Rule::Traceparent);
        rules.extend(
            [
                "/correlationId",
                "/correlation_id",
                "/metadata/correlationId",
            ]
            .into_iter()
            .map(|p| Rule::JsonPointer(p.to_string())),
        );
        Self { rules }
    }
}

impl Extractor {
    /// The first correlation ID any rule finds.
    pub fn extract(&self, msg: &Message) -> Option<String> {
        // Parse the body at most once, and only if a body rule is reached.
        let mut body: Option<Option<serde_json::Value>> = None;
        for rule in &self.rules {
            let found = match rule {
                Rule::Property => msg.properties.correlation_id.clone(),
                Rule::Header(name) => msg.headers.get_ignore_case(name).and_then(header_text),
                Rule::Traceparent => msg
                    .headers
                    .get_ignore_case("traceparent")
                    .and_then(FieldValue::as_str)
                    .and_then(traceparent_trace_id)
                    .map(str::to_string),
                Rule::JsonPointer(ptr) => body
                    .get_or_insert_with(|| parse_json_body(&msg.payload))
                    .as_ref()
                    .and_then(|v| v.pointer(ptr))
                    .and_then(json_scalar_text),
                Rule::Key => msg
                    .key
                    .as_ref()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .map(str::to_string),
            };
            if let Some(id) = found.filter(|s| !s.is_empty()) {
                return Some(id);
            }
        }
        None
    }
}

fn header_text(v: &FieldValue) -> Option<String> {
    match v {
        FieldValue::Void
        | FieldValue::Table(_)
        | FieldValue::Array(_)
        | FieldValue::ByteArray(_) => None,
        FieldValue::LongString(_) | FieldValue::ShortString(_) => v.as_str().map(str::to_string),
        other => Some(other.to_string()),
    }
}

fn json_scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Only bodies that look like a JSON object or array are parsed; anything else, including
/// invalid JSON, simply has no body ID.
fn parse_json_body(payload: &[u8]) -> Option<serde_json::Value> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' && *first != b'[' {
        return None;
    }
    serde_json::from_slice(payload).ok()
}

/// The trace id of a W3C `traceparent` (`version-traceid-parentid-flags`), if well formed.
pub fn traceparent_trace_id(value: &str) -> Option<&str> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent = parts.next()?;
    let _flags = parts.next()?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(parent, 16);
    valid.then_some(trace_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(payload: &'static [u8]) -> Message {
        Message::new("q", 0, Bytes::from_static(payload))
    }

    #[test]
    fn property_wins_over_headers_and_body() {
        let mut m = msg(br#"{"correlationId": "body"}"#);
        m.headers
            .insert("X-Correlation-ID", FieldValue::string("header"));
        m.properties.correlation_id = Some("prop".into());
        let ex = Extractor::default();
        assert_eq!(ex.extract(&m).as_deref(), Some("prop"));
        m.properties.correlation_id = None;
        assert_eq!(ex.extract(&m).as_deref(), Some("header"));
        m.headers = Default::default();
        assert_eq!(ex.extract(&m).as_deref(), Some("body"));
    }

    #[test]
    fn nested_pointer_and_numbers() {
        let ex = Extractor::default();
        assert_eq!(
            ex.extract(&msg(br#"{"metadata": {"correlationId": 42}}"#))
                .as_deref(),
            Some("42")
        );
        assert_eq!(ex.extract(&msg(br#"{"correlation_id": ""}"#)), None);
    }

    #[test]
    fn traceparent() {
        let mut m = msg(b"");
        m.headers.insert(
            "traceparent",
            FieldValue::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(
            Extractor::default().extract(&m).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
            "",
        ] {
            assert_eq!(traceparent_trace_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn invalid_or_binary_bodies_do_not_match() {
        let ex = Extractor::default();
        for body in [
            &b"{\"correlationId\": "[..],
            b"\x00\xff\xfe",
            b"plain text",
            b"[1,2",
            b"",
        ] {
            let m = Message::new("q", 0, Bytes::copy_from_slice(body));
            assert_eq!(ex.extract(&m), None);
        }
    }

    #[test]
    fn key_rule_is_opt_in() {
        let mut m = msg(b"");
        m.key = Some(Bytes::from_static(b"ORD-1"));
        assert_eq!(Extractor::default().extract(&m), None);
        let ex = Extractor {
            rules: vec![Rule::Key],
        };
        assert_eq!(ex.extract(&m).as_deref(), Some("ORD-1"));
    }
}
