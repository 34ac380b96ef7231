//! The `--filter` language of `peek` and `replay`: conditions on a message's death, routing,
//! properties, body and headers, joined by `and` and `or` and grouped with parentheses.
//!
//! ```text
//! expr      = all ( "or" all )*            and binds tighter than or
//! all       = condition ( "and" condition )*
//! condition = "(" expr ")" | FIELD ( "=" | "!=" | "~" ) VALUE
//! ```
//!
//! `and` and `or` are words (any case) with a space or a parenthesis on each side. A value
//! runs to the next `and`/`or` outside its own parentheses, or to the `)` that closes the
//! group around it, so `body~^(a|b)$` needs no quotes. A value that holds the word `and` or
//! `or`, a parenthesis of its own, or spaces at its ends is written in double quotes, with
//! `\"` for a quote and `\\` for a backslash inside; a value that only starts with a quote
//! (`body~"id":\s*7`) is taken as written, as before the quotes meant anything.

use crate::format::decode::{Decoder, Input};
use crate::model::Message;
use crate::model::correlation::Extractor;
use crate::ops::replay::ReplayError;
use regex::Regex;
use serde_json::Value;
use std::cell::OnceCell;
use std::sync::Arc;

/// What the language accepts, for every message about a filter it cannot read.
const LANGUAGE: &str = "a filter is conditions FIELD=VALUE, FIELD!=VALUE or FIELD~REGEX joined by and, or (and binds tighter), grouped with parentheses; a value in double quotes is taken as written";

const FILTER_FIELDS: &[&str] = &[
    "reason",
    "queue",
    "exchange",
    "routing_key",
    "message_id",
    "correlation_id",
    "type",
    "app_id",
    "key",
    "body",
];

/// The fields named by a pattern rather than listed, for messages about a filter.
const PATTERN_FIELDS: &str = "header.NAME, body./JSON/POINTER, key./JSON/POINTER";

/// A parsed `--filter`, where FIELD is reason, queue (the queue it died in), exchange,
/// routing_key, message_id, correlation_id, type, app_id, key (Kafka), body, header.NAME,
/// or a value inside the body or key by JSON Pointer: `body./customer/id=42` reads the
/// payload as the profile's decoder does (Avro, Protobuf, MessagePack, CBOR, compressed
/// bodies; see [`Filter::decoding`]) or as JSON, and compares a string as it is, anything
/// else as its JSON text.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
    text: String,
    decoder: Option<Arc<Decoder>>,
}

/// Whether `name` is a field a condition can test.
fn is_field(name: &str) -> bool {
    FILTER_FIELDS.contains(&name) || name.starts_with("header.") || pointer_field(name).is_some()
}

/// `body./a/b` or `key./a/b`: which part (true for the key) and the JSON Pointer.
fn pointer_field(name: &str) -> Option<(bool, &str)> {
    let (key, pointer) = match name.strip_prefix("body.") {
        Some(p) => (false, p),
        None => (true, name.strip_prefix("key.")?),
    };
    pointer.starts_with('/').then_some((key, pointer))
}

#[derive(Debug, Clone)]
enum Expr {
    Clause(Clause),
    All(Vec<Expr>),
    Any(Vec<Expr>),
}

#[derive(Debug, Clone)]
struct Clause {
    field: String,
    op: Op,
    value: String,
    regex: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Matches,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Self, ReplayError> {
        if text.trim().is_empty() {
            return Err(ReplayError::Invalid("--filter is empty".into()));
        }
        let mut p = Parser { s: text, i: 0 };
        let expr = p.any()?;
        p.skip_ws();
        if p.i < text.len() {
            return Err(if p.rest().starts_with(')') {
                p.error(&format!(
                    "a \")\" with no \"(\" before it, at \"{}\"",
                    p.rest()
                ))
            } else {
                p.error(&format!("expected and or or before \"{}\"", p.rest()))
            });
        }
        Ok(Self {
            expr,
            text: text.to_string(),
            decoder: None,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Read bodies and keys with `decoder` for `body./…` and `key./…` conditions (without
    /// one, they are read as JSON).
    pub fn decoding(mut self, decoder: Arc<Decoder>) -> Self {
        self.decoder = Some(decoder);
        self
    }

    /// Whether a condition looks inside bodies or keys by JSON Pointer.
    pub fn reads_inside(&self) -> bool {
        self.expr.reads_inside()
    }

    pub fn matches(&self, m: &Message) -> bool {
        let seen = Seen {
            m,
            decoder: self.decoder.as_deref(),
            body: OnceCell::new(),
            key: OnceCell::new(),
        };
        self.expr.matches(&seen)
    }
}

/// One message as conditions see it: its body and key read once, when a condition first
/// looks inside them.
struct Seen<'a> {
    m: &'a Message,
    decoder: Option<&'a Decoder>,
    body: OnceCell<Option<Value>>,
    key: OnceCell<Option<Value>>,
}

impl Seen<'_> {
    fn inside(&self, key: bool) -> Option<&Value> {
        let (cell, input) = if key {
            (&self.key, Input::key(self.m))
        } else {
            (&self.body, Input::payload(self.m))
        };
        cell.get_or_init(|| match self.decoder.and_then(|d| d.decode(&input)) {
            Some(Ok(d)) => Some(d.value),
            // What the decoder cannot read has no fields to compare.
            Some(Err(_)) => None,
            None => serde_json::from_slice(input.bytes).ok(),
        })
        .as_ref()
    }

    fn field(&self, field: &str) -> Option<String> {
        match pointer_field(field) {
            Some((key, pointer)) => self.inside(key)?.pointer(pointer).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            None => field_value(self.m, field),
        }
    }
}

impl Expr {
    fn matches(&self, m: &Seen<'_>) -> bool {
        match self {
            Expr::Clause(c) => c.matches(m),
            Expr::All(all) => all.iter().all(|e| e.matches(m)),
            Expr::Any(any) => any.iter().any(|e| e.matches(m)),
        }
    }

    fn reads_inside(&self) -> bool {
        match self {
            Expr::Clause(c) => pointer_field(&c.field).is_some(),
            Expr::All(es) | Expr::Any(es) => es.iter().any(Expr::reads_inside),
        }
    }
}

impl Clause {
    fn matches(&self, m: &Seen<'_>) -> bool {
        let v = m.field(&self.field);
        match self.op {
            Op::Eq => v.as_deref() == Some(self.value.as_str()),
            Op::Ne => v.as_deref() != Some(self.value.as_str()),
            Op::Matches => match (&self.regex, v) {
                (Some(r), Some(v)) => r.is_match(&v),
                _ => false,
            },
        }
    }
}

/// A recursive-descent reader over the filter's text; `i` is a byte offset.
struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn error(&self, what: &str) -> ReplayError {
        ReplayError::Invalid(format!("--filter: {what} ({LANGUAGE})"))
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.i += rest.len() - rest.trim_start().len();
    }

    /// The keyword `kw` next (after spaces), standing as a word: consumed if so.
    fn keyword(&mut self, kw: &str) -> bool {
        match keyword_at(self.s, self.i) {
            Some((found, end)) if found.eq_ignore_ascii_case(kw) => {
                self.i = end;
                true
            }
            _ => false,
        }
    }

    fn any(&mut self) -> Result<Expr, ReplayError> {
        self.joined("or", Self::all, Expr::Any)
    }

    fn all(&mut self) -> Result<Expr, ReplayError> {
        self.joined("and", Self::condition, Expr::All)
    }

    /// One or more `part`s joined by `word`: a single one stands alone, more are `join`ed.
    fn joined(
        &mut self,
        word: &str,
        part: fn(&mut Self) -> Result<Expr, ReplayError>,
        join: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, ReplayError> {
        let mut parts = vec![part(self)?];
        while self.keyword(word) {
            parts.push(part(self)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            join(parts)
        })
    }

    fn condition(&mut self) -> Result<Expr, ReplayError> {
        self.skip_ws();
        let rest = self.rest();
        if rest.is_empty() {
            return Err(self.error("a condition is missing at the end"));
        }
        if rest.starts_with(')') {
            return Err(self.error("a condition is missing before \")\""));
        }
        if let Some(inner) = rest.strip_prefix('(') {
            self.i = self.s.len() - inner.len();
            let e = self.any()?;
            self.skip_ws();
            return match self.rest().strip_prefix(')') {
                Some(after) => {
                    self.i = self.s.len() - after.len();
                    Ok(e)
                }
                None => Err(self.error("a \"(\" is not closed")),
            };
        }
        self.clause().map(Expr::Clause)
    }

    fn clause(&mut self) -> Result<Clause, ReplayError> {
        let start = self.i;
        let rest = self.rest();
        let field_end = rest
            .char_indices()
            .find(|&(j, c)| {
                c.is_whitespace()
                    || matches!(c, '=' | '~' | '(' | ')')
                    || (c == '!' && rest[j + 1..].starts_with('='))
            })
            .map_or(rest.len(), |(j, _)| j);
        let field = rest[..field_end].to_string();
        self.i += field_end;
        self.skip_ws();
        let rest = self.rest();
        let (op, len) = if rest.starts_with("!=") {
            (Op::Ne, 2)
        } else if rest.starts_with('~') {
            (Op::Matches, 1)
        } else if rest.starts_with('=') {
            (Op::Eq, 1)
        } else {
            let part = &self.s[start..self.value_end(start)];
            return Err(self.error(&format!("\"{}\" is not a condition", part.trim())));
        };
        if field.is_empty() {
            return Err(self.error("a condition has no field before its = or ~"));
        }
        if !is_field(&field) {
            return Err(ReplayError::Invalid(format!(
                "--filter: unknown field \"{field}\" (one of {}, {PATTERN_FIELDS})",
                FILTER_FIELDS.join(", ")
            )));
        }
        self.i += len;
        self.skip_ws();
        let value = match quoted(self.s, self.i) {
            Some((v, end)) => {
                self.i = end;
                v
            }
            None => {
                let end = self.value_end(self.i);
                let v = self.s[self.i..end].trim_end().to_string();
                if let Some(next) = second_condition(&v) {
                    return Err(self.error(&format!(
                        "the value \"{v}\" reads as two conditions: put and or or before \"{next}\", or quote the value"
                    )));
                }
                self.i = end;
                v
            }
        };
        let regex = match op {
            Op::Matches => Some(Regex::new(&value).map_err(|e| {
                ReplayError::Invalid(format!("--filter: bad regex \"{value}\": {e}"))
            })?),
            _ => None,
        };
        Ok(Clause {
            field,
            op,
            value,
            regex,
        })
    }

    /// Where an unquoted value starting at `from` ends: at `and`/`or` outside its own
    /// parentheses, at the `)` that closes the group around it, or at the end.
    fn value_end(&self, from: usize) -> usize {
        let mut depth = 0usize;
        for (j, c) in self.s[from..].char_indices() {
            let at = from + j;
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => return at,
                ')' => depth -= 1,
                c if c.is_whitespace() && depth == 0 && keyword_at(self.s, at).is_some() => {
                    return at;
                }
                _ => {}
            }
        }
        self.s.len()
    }
}

/// A condition written inside an unquoted value (`reason=rejected queue=x`, a join
/// forgotten): the word where it starts. A value really like that is quoted.
fn second_condition(value: &str) -> Option<&str> {
    value.split_whitespace().skip(1).find(|word| {
        let name_end = word.find(['=', '~', '!']).unwrap_or(word.len());
        let (name, op) = word.split_at(name_end);
        is_field(name) && (op.starts_with('=') || op.starts_with('~') || op.starts_with("!="))
    })
}

/// `and` or `or` after the spaces at `at` (there must be some, or a `)` just before), with
/// a space, a `(` or the end after it: the word and where it ends.
fn keyword_at(s: &str, at: usize) -> Option<(&str, usize)> {
    let rest = &s[at..];
    let trimmed = rest.trim_start();
    let start = at + (rest.len() - trimmed.len());
    if start == at && !s[..at].ends_with(')') {
        return None;
    }
    ["and", "or"].iter().find_map(|kw| {
        let word = trimmed.get(..kw.len())?;
        let after = &trimmed[kw.len()..];
        (word.eq_ignore_ascii_case(kw)
            && (after.is_empty()
                || after.starts_with(char::is_whitespace)
                || after.starts_with('(')))
        .then_some((word, start + kw.len()))
    })
}

/// A value in double quotes at `at`, unescaped, and where it ends; None unless a whole
/// value is quoted (the closing quote followed by the end, a `)` or `and`/`or`), so that
/// one that only starts with a quote is read as written.
fn quoted(s: &str, at: usize) -> Option<(String, usize)> {
    let body = s[at..].strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((j, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => value.push(e),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            },
            '"' => {
                let end = at + 1 + j + 1;
                let after = s[end..].trim_start();
                let boundary =
                    after.is_empty() || after.starts_with(')') || keyword_at(s, end).is_some();
                return boundary.then_some((value, end));
            }
            c => value.push(c),
        }
    }
    None
}

fn field_value(m: &Message, field: &str) -> Option<String> {
    let death = m.deaths().into_iter().next();
    match field {
        "reason" => death.map(|d| d.reason.as_str().to_string()),
        "queue" => death.map(|d| d.queue),
        "exchange" => death
            .and_then(|d| d.exchange)
            .or_else(|| m.exchange.clone()),
        "routing_key" => death
            .and_then(|d| d.routing_keys.into_iter().next())
            .or_else(|| m.routing_key.clone()),
        "message_id" => m.properties.message_id.clone(),
        "correlation_id" => Extractor::default().extract(m),
        "type" => m.properties.kind.clone(),
        "app_id" => m.properties.app_id.clone(),
        "key" => m
            .key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned()),
        "body" => Some(String::from_utf8_lossy(&m.payload).into_owned()),
        h => {
            let name = h.strip_prefix("header.")?;
            let v = m.headers.get_ignore_case(name)?;
            v.as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .or_else(|| v.as_i64().map(|n| n.to_string()))
                .or_else(|| Some(v.to_json().to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldValue;

    fn message(tenant: &str, body: &str) -> Message {
        let mut m = Message::new("q", 0, body.as_bytes().to_vec());
        m.properties.message_id = Some("m-1".into());
        m.headers.insert("tenant", FieldValue::string(tenant));
        m
    }

    fn keeps(filter: &str, m: &Message) -> bool {
        Filter::parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(m)
    }

    #[test]
    fn json_pointer_conditions_look_inside_bodies_and_keys() {
        let json = message("acme", r#"{"customer":{"id":42,"name":"Zoë"},"paid":true}"#);
        assert!(keeps("body./customer/id=42", &json));
        assert!(!keeps("body./customer/id=4", &json));
        assert!(keeps("body./customer/name=Zoë and body./paid=true", &json));
        assert!(
            keeps("body./customer~^\\{", &json),
            "an object is its JSON text"
        );
        assert!(keeps("body./missing!=x", &json), "absent is not equal");
        assert!(!keeps("body./missing=x", &json));
        // Not JSON, and nothing decodes it: no field to compare.
        assert!(!keeps("body./customer/id=42", &message("acme", "id=42")));

        // MessagePack by its content type, gzip by its magic bytes: read by the decoder.
        let mut packed = Vec::new();
        let value = rmpv::Value::Map(vec![(
            rmpv::Value::from("customer"),
            rmpv::Value::Map(vec![(rmpv::Value::from("id"), rmpv::Value::from(42))]),
        )]);
        rmpv::encode::write_value(&mut packed, &value).unwrap();
        let mut m = Message::new("q", 0, packed);
        m.properties.content_type = Some("application/msgpack".into());
        let decoding = |text: &str| {
            Filter::parse(text)
                .unwrap()
                .decoding(Arc::new(Decoder::default()))
        };
        assert!(decoding("body./customer/id=42").matches(&m));
        assert!(!Filter::parse("body./customer/id=42").unwrap().matches(&m));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, br#"{"customer":{"id":7}}"#).unwrap();
        let gzipped = Message::new("q", 0, gz.finish().unwrap());
        assert!(decoding("body./customer/id=7").matches(&gzipped));

        // Kafka keys, the same way.
        let mut keyed = message("acme", "{}");
        keyed.key = Some(br#"{"tenant":"eu"}"#.to_vec().into());
        assert!(keeps("key./tenant=eu", &keyed));
        assert!(Filter::parse("body./a=1").unwrap().reads_inside());
        assert!(!Filter::parse("body=1").unwrap().reads_inside());
        let err = Filter::parse("body.customer=1").unwrap_err().to_string();
        assert!(err.contains("body./JSON/POINTER"), "{err}");
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let acme = message("acme", "x");
        let other = message("other", "x");
        assert!(keeps("header.tenant=zeta or header.tenant=acme", &acme));
        assert!(!keeps("header.tenant=zeta or header.tenant=acme", &other));
        // zeta or (acme and body=y): false for acme with body x.
        assert!(!keeps(
            "header.tenant=zeta OR header.tenant=acme And body=y",
            &acme
        ));
        assert!(keeps(
            "(header.tenant=acme or header.tenant=zeta) and body=x",
            &acme
        ));
        assert!(keeps("((header.tenant=acme))and(body=x)", &acme));
        assert!(!keeps(
            "message_id!=m-1 or (body=y and header.tenant=acme)",
            &acme
        ));
    }

    #[test]
    fn values_keep_their_own_parentheses_and_quotes_hold_anything() {
        let m = message("acme", "red or (blue) and \"green\"");
        // Balanced parentheses in a regex belong to it; the one after closes the group.
        assert!(keeps("(body~^red (or|nor) and header.tenant=acme)", &m));
        assert!(keeps("body=\"red or (blue) and \\\"green\\\"\"", &m));
        assert!(keeps("body~\" \\(blue\\) \" and header.tenant=acme", &m));
        // Only a whole value in quotes is unquoted: this regex starts with one.
        let json = message("acme", "{\"n\": 1}");
        assert!(keeps("body~\"n\":\\s*1", &json));
        // A word that merely contains and/or is a value.
        let m = message("orchard and sons", "x");
        assert!(keeps("header.tenant=\"orchard and sons\"", &m));
        assert!(keeps("header.tenant~^orchard", &m));
    }

    #[test]
    fn what_is_not_the_language_says_what_is() {
        for bad in [
            "reason=rejected or",
            "and reason=rejected",
            "(reason=rejected",
            "reason=rejected)",
            "()",
            "reason",
            "reason=rejected queue=x\"",
        ] {
            let e = Filter::parse(bad).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains("joined by and, or"), "{bad}: {e}");
        }
        let e = Filter::parse("colour=red")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field \"colour\""), "{e}");
        assert!(Filter::parse("body~(").is_err());
        // An unclosed quote is just a character of the value; a quoted one may hold `a=b`.
        assert!(keeps("body=\"open", &message("acme", "\"open")));
        assert!(keeps("body=\"x queue=y\"", &message("acme", "x queue=y")));
        assert!(Filter::parse("  ").is_err());
    }
}
