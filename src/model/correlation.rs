//! Correlation-ID extraction, backend-neutral: which ID ties a message to its copies and
//! follow-ups. Rules are tried in order; header rules run before any payload is decoded.

use crate::model::MessageView;
use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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
    pub fn extract(&self, msg: &impl MessageView) -> Option<String> {
        // Parse the body at most once, and only if a body rule is reached.
        let mut body = None;
        self.rules.iter().find_map(|rule| {
            apply(rule, msg, None, &mut body)
                .filter(|s| !s.is_empty())
                .map(Cow::into_owned)
        })
    }

    /// The first correlation ID any rule finds when the payload reads as `body` (decoded
    /// from Avro, MessagePack, a compressed body...): JSON Pointer rules read `body`.
    pub fn extract_decoded(
        &self,
        msg: &impl MessageView,
        body: &serde_json::Value,
    ) -> Option<String> {
        first_decoded(&self.rules, msg, body).map(Cow::into_owned)
    }

    /// Whether `id` is the message's correlation ID, as `extract(msg) == Some(id)` says.
    /// A scan asks this of every message: build a [`IdMatcher`] once instead.
    pub fn matches(&self, msg: &impl MessageView, id: &str) -> bool {
        self.matcher(id).matches(msg)
    }

    /// A [`IdMatcher`] for one ID under these rules.
    pub fn matcher(&self, id: &str) -> IdMatcher {
        let needles = self
            .rules
            .iter()
            .map(|r| match r {
                Rule::JsonPointer(ptr) => {
                    pointer_key(ptr).map(|k| Finder::new(k.as_bytes()).into_owned())
                }
                _ => None,
            })
            .collect();
        IdMatcher {
            rules: self.rules.clone(),
            id: id.to_string(),
            id_finder: Finder::new(id.as_bytes()).into_owned(),
            numeric: looks_numeric(id),
            needles,
        }
    }
}

/// Tells whether a message's correlation ID is one given ID, as [`Extractor::extract`]
/// would find it, but quicker: its searches are prepared once, and a JSON body that cannot
/// hold the ID is never parsed (parsing is the expensive part of a scan).
#[derive(Debug, Clone)]
pub struct IdMatcher {
    rules: Vec<Rule>,
    id: String,
    id_finder: Finder<'static>,
    numeric: bool,
    /// Per rule: for a JSON Pointer, a search for its last key (None: any body may hold it).
    needles: Vec<Option<Finder<'static>>>,
}

impl IdMatcher {
    pub fn matches(&self, msg: &(impl MessageView + ?Sized)) -> bool {
        let mut body = None;
        for (i, rule) in self.rules.iter().enumerate() {
            let needle = self.needles.get(i).and_then(Option::as_ref);
            if let Rule::JsonPointer(_) = rule
                && body.is_none()
                && self.rules[i..]
                    .iter()
                    .all(|r| matches!(r, Rule::JsonPointer(_)))
                && !self.could_hold(msg.payload())
            {
                // Only body rules are left, and none can give the ID: whatever they give
                // (another ID or nothing), the answer is no.
                return false;
            }
            if let Some(found) = apply(rule, msg, needle, &mut body).filter(|s| !s.is_empty()) {
                return found == self.id;
            }
        }
        false
    }

    /// Whether the message's correlation ID is the ID when its payload reads as `body` (an
    /// Avro, Protobuf or MessagePack payload decoded, or a compressed one inflated): the
    /// same rules in the same order, the JSON Pointer ones read in `body` instead of the
    /// payload's bytes.
    pub fn matches_decoded(
        &self,
        msg: &(impl MessageView + ?Sized),
        body: &serde_json::Value,
    ) -> bool {
        first_decoded(&self.rules, msg, body).is_some_and(|found| found == self.id)
    }

    /// Whether a JSON payload could hold the ID as a string or number: a string spells it
    /// byte for byte unless written with escapes, and only an ID that looks like a number
    /// could be a number's text written another way (`1e3`).
    fn could_hold(&self, payload: &[u8]) -> bool {
        self.numeric
            || self.id_finder.find(payload).is_some()
            || memchr::memchr(b'\\', payload).is_some()
    }
}

fn looks_numeric(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// What one rule finds in a message; `body` caches the parsed payload between rules, and
/// `needle` is a prepared search for a JSON Pointer's key (made here when not given).
fn apply<'m>(
    rule: &Rule,
    msg: &'m (impl MessageView + ?Sized),
    needle: Option<&Finder<'_>>,
    body: &mut Option<Option<serde_json::Value>>,
) -> Option<Cow<'m, str>> {
    match rule {
        Rule::Property => msg.correlation_property().map(Cow::Borrowed),
        Rule::Header(name) => msg.header_text(name),
        Rule::Traceparent => match msg.header_text("traceparent")? {
            Cow::Borrowed(t) => traceparent_trace_id(t).map(Cow::Borrowed),
            Cow::Owned(t) => traceparent_trace_id(&t).map(|id| Cow::Owned(id.to_string())),
        },
        // Parsing is the expensive part of a scan: skip it when the field's name is
        // nowhere in the payload.
        Rule::JsonPointer(ptr) if !mentions_key(msg.payload(), ptr, needle) => None,
        Rule::JsonPointer(ptr) => body
            .get_or_insert_with(|| parse_json_body(msg.payload()))
            .as_ref()
            .and_then(|v| v.pointer(ptr))
            .and_then(json_scalar_text)
            .map(Cow::Owned),
        Rule::Key => msg
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(Cow::Borrowed),
    }
}

/// What the first rule that finds anything finds, with the payload read as `body`.
fn first_decoded<'m>(
    rules: &[Rule],
    msg: &'m (impl MessageView + ?Sized),
    body: &serde_json::Value,
) -> Option<Cow<'m, str>> {
    rules.iter().find_map(|rule| {
        let found = match rule {
            Rule::JsonPointer(ptr) => body.pointer(ptr).and_then(json_scalar_text).map(Cow::Owned),
            other => apply(other, msg, None, &mut None),
        };
        found.filter(|s| !s.is_empty())
    })
}

fn json_scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The last key of a JSON Pointer, unescaped; None when it is empty or could be an array
/// index (`/ids/0`), which is never written as a quoted key.
fn pointer_key(pointer: &str) -> Option<Cow<'_, str>> {
    let last = pointer.rsplit('/').next().unwrap_or("");
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let key = if last.contains('~') {
        Cow::Owned(last.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(last)
    };
    (!key.is_empty()).then_some(key)
}

/// Whether the last key of a JSON Pointer appears, quoted, in the payload (`needle` is a
/// prepared search for it): a field written with escapes in its name is the one case this
/// misses.
fn mentions_key(payload: &[u8], pointer: &str, needle: Option<&Finder<'_>>) -> bool {
    let Some(key) = pointer_key(pointer) else {
        return true;
    };
    let made;
    let finder = match needle {
        Some(f) => f,
        None => {
            made = Finder::new(key.as_bytes());
            &made
        }
    };
    finder
        .find_iter(payload)
        .any(|at| at > 0 && payload[at - 1] == b'"' && payload.get(at + key.len()) == Some(&b'"'))
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
    use crate::model::{FieldValue, Message};
    use bytes::Bytes;

    #[test]
    fn a_decoded_body_is_read_by_the_body_rules_in_their_order() {
        let binary = msg(b"\x00\x00\x00\x00\x07\x10ORD-7");
        let decoded = serde_json::json!({"orderId": 7, "correlationId": "ORD-7"});
        let rules = Extractor::default();
        assert!(
            !rules.matches(&binary, "ORD-7"),
            "the bytes alone say nothing"
        );
        assert!(rules.matcher("ORD-7").matches_decoded(&binary, &decoded));
        assert!(!rules.matcher("ORD-8").matches_decoded(&binary, &decoded));
        assert_eq!(
            rules.extract_decoded(&binary, &decoded).as_deref(),
            Some("ORD-7")
        );
        // A header rule comes first: its ID wins over the body's.
        let mut headed = binary.clone();
        headed
            .headers
            .insert("x-correlation-id", FieldValue::string("H-1"));
        assert!(!rules.matcher("ORD-7").matches_decoded(&headed, &decoded));
        assert!(rules.matcher("H-1").matches_decoded(&headed, &decoded));
        // Nested pointers and numbers, as in the payload's own JSON.
        let nested = Extractor {
            rules: vec![Rule::JsonPointer("/customer/id".into())],
        };
        let body = serde_json::json!({"customer": {"id": 42}});
        assert!(nested.matcher("42").matches_decoded(&binary, &body));
        assert!(!nested.matcher("4").matches_decoded(&binary, &body));
    }

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
        let by_index = Extractor {
            rules: vec![Rule::JsonPointer("/ids/0".into())],
        };
        let m = msg(br#"{"ids": ["ORD-7", "x"]}"#);
        assert_eq!(by_index.extract(&m).as_deref(), Some("ORD-7"));
        assert!(by_index.matches(&m, "ORD-7"));
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

    #[test]
    fn matches_agrees_with_extract_without_parsing_bodies_that_cannot_hold_the_id() {
        let with_key = {
            let mut ex = Extractor::default();
            ex.rules.push(Rule::Key);
            ex
        };
        let mut cases: Vec<Message> = [
            &br#"{"correlationId":"ORD-1"}"#[..],
            br#"{"correlationId":"ORD-2"}"#,
            br#"{"correlationId":"ORD\u002d1"}"#,
            br#"{"correlation_id":1e3}"#,
            br#"{"correlation_id":1000}"#,
            br#"{"metadata":{"correlationId":"ORD-1"}}"#,
            br#"{"other":"ORD-1"}"#,
            br#"{"correlationId":""}"#,
            b"\x00\xff ORD-1",
            b"",
        ]
        .into_iter()
        .map(msg)
        .collect();
        let mut keyed = msg(br#"{"correlationId":"ORD-2"}"#);
        keyed.key = Some(Bytes::from_static(b"ORD-1"));
        cases.push(keyed);
        let mut unkeyed_body = msg(br#"{"other":1}"#);
        unkeyed_body.key = Some(Bytes::from_static(b"ORD-1"));
        cases.push(unkeyed_body);
        let mut header = msg(br#"{"correlationId":"ORD-2"}"#);
        header
            .headers
            .insert("X-Correlation-ID", FieldValue::string("ORD-1"));
        cases.push(header);
        for ex in [Extractor::default(), with_key] {
            for m in &cases {
                for id in ["ORD-1", "ORD-2", "ORD-1", "1000", "1000.0", ""] {
                    assert_eq!(
                        ex.matches(m, id),
                        ex.extract(m).as_deref() == Some(id),
                        "{id} in {:?} with {:?}",
                        m.payload,
                        ex.rules.last()
                    );
                }
            }
        }
    }
}
