//! The lines the message view shows: the payload pretty-printed (or not) and cut into
//! display lines, and the properties, headers and dead-letter history as a tree. Made once
//! when a message opens or its mode changes, not on every frame.

use crate::format::decode::{DecodeError, Decoded};
use crate::model::{FieldTable, FieldValue, Message};
use crate::ops::trace::Extractor;
use crate::tui::state::{BodyKind, LINE_CHUNK, MessageDetail, PRETTY_LIMIT, PayloadMode};

/// Cut text into display lines of at most [`LINE_CHUNK`] characters, so a single huge
/// line never has to be laid out whole.
fn chunk_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() <= LINE_CHUNK {
            out.push(line.to_string());
            continue;
        }
        let mut start = 0;
        while start < line.len() {
            let mut end = (start + LINE_CHUNK).min(line.len());
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            out.push(line[start..end].to_string());
            start = end;
        }
    }
    out
}

/// Resolve the payload mode and prepare the lines the payload pane shows.
pub fn render_body(d: &mut MessageDetail) {
    d.body_scroll = 0;
    let Some(m) = &d.msg else {
        d.body.clear();
        return;
    };
    let text = std::str::from_utf8(&m.payload).ok();
    let pretty = || -> Option<String> {
        if m.payload.len() > PRETTY_LIMIT {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&m.payload).ok()?;
        serde_json::to_string_pretty(&v).ok()
    };
    let decoded = || match &d.decoded {
        Some(Ok(v)) => serde_json::to_string_pretty(&v.value).ok(),
        _ => None,
    };
    let (kind, lines) = match d.mode {
        PayloadMode::Hex => (BodyKind::Hex, Vec::new()),
        PayloadMode::Decoded => match (decoded(), &d.decoded) {
            (Some(p), _) => (BodyKind::Decoded, chunk_lines(&p)),
            (None, Some(Err(e))) => (
                BodyKind::Text,
                vec![format!("(not decoded: {e}; p switches mode)")],
            ),
            (None, _) => (
                BodyKind::Text,
                vec!["(nothing to decode; p switches mode)".to_string()],
            ),
        },
        PayloadMode::Text => match text {
            Some(t) => (BodyKind::Text, chunk_lines(t)),
            None => (
                BodyKind::Text,
                chunk_lines(&String::from_utf8_lossy(&m.payload)),
            ),
        },
        PayloadMode::Json => match pretty() {
            Some(p) => (BodyKind::Json, chunk_lines(&p)),
            None => (
                BodyKind::Text,
                vec!["(not JSON, or too large to pretty-print; p switches mode)".to_string()],
            ),
        },
        PayloadMode::Auto => match (decoded(), pretty(), text) {
            (Some(p), _, _) => (BodyKind::Decoded, chunk_lines(&p)),
            (None, Some(p), _) => (BodyKind::Json, chunk_lines(&p)),
            (None, None, Some(t)) => (BodyKind::Text, chunk_lines(t)),
            (None, None, None) => (BodyKind::Hex, Vec::new()),
        },
    };
    d.body_kind = kind;
    d.body = lines;
}

/// The details line saying what the decoder made of the payload: how it was read, or why
/// it could not be.
pub fn decoded_line(decoded: Option<&Result<Decoded, DecodeError>>) -> Option<String> {
    Some(match decoded? {
        Ok(d) => format!("  decoded: {}", d.decoded_as.summary()),
        Err(e) => format!("  decoded: no: {e}"),
    })
}

fn push_table(out: &mut Vec<String>, t: &FieldTable, depth: usize) {
    for (k, v) in t.iter() {
        push_value(out, k, v, depth);
    }
}

fn push_value(out: &mut Vec<String>, name: &str, v: &FieldValue, depth: usize) {
    let pad = "  ".repeat(depth);
    match v {
        FieldValue::Table(t) => {
            out.push(format!("{pad}{name}: {{{} fields}}", t.len()));
            push_table(out, t, depth + 1);
        }
        FieldValue::Array(items) => {
            out.push(format!("{pad}{name}: [{} items]", items.len()));
            for (i, item) in items.iter().enumerate() {
                push_value(out, &format!("[{i}]"), item, depth + 1);
            }
        }
        other => out.push(format!("{pad}{name}: {other}  ‹{}›", other.type_name())),
    }
}

/// Properties, headers as a tree, and the dead-letter history as a timeline.
pub fn meta_lines(m: &Message) -> Vec<String> {
    let mut out = Vec::new();
    let ex = Extractor::default();
    let place = match (m.partition, m.offset) {
        (Some(p), Some(o)) => format!("{} partition {p} offset {o}", m.queue),
        _ => format!("{} position {}", m.queue, m.position),
    };
    out.push(format!("▸ {place}"));
    if let Some(t) = m.timestamp {
        out.push(format!("  time: {}", crate::model::time::rfc3339(&t)));
    }
    if let Some(c) = ex.extract(m) {
        out.push(format!("  correlation: {c}"));
    }
    if let (Some(x), Some(k)) = (&m.exchange, &m.routing_key) {
        let x = if x.is_empty() {
            "(default)"
        } else {
            x.as_str()
        };
        out.push(format!("  routed: {x} / {k}"));
    }
    if let Some(r) = crate::model::routed_summary(m.routed_queues.as_deref()) {
        out.push(format!("  reached: {r}"));
    }
    if let Some(k) = &m.key {
        out.push(format!("  key: {}", String::from_utf8_lossy(k)));
    }
    out.push(format!(
        "  size: {} B   redelivered: {}{}",
        m.payload.len(),
        if m.redelivered { "yes" } else { "no" },
        match (m.delivery_count, m.delivery_limit) {
            (c, Some(limit)) => format!("   delivery count: {} of {limit}", c.unwrap_or(0)),
            (Some(c), None) => format!("   delivery count: {c}"),
            (None, None) => String::new(),
        }
    ));
    let deaths = m.deaths();
    if !deaths.is_empty() {
        out.push("▸ Dead-letter history (newest first)".into());
        for (i, d) in deaths.iter().enumerate() {
            let when = d
                .time
                .map(|t| crate::model::time::rfc3339(&t))
                .unwrap_or_else(|| "-".into());
            let mut line = format!(
                "  {}. {when}  {} in {} ×{}",
                i + 1,
                d.reason,
                d.queue,
                d.count
            );
            if let Some(x) = &d.exchange {
                let x = if x.is_empty() {
                    "(default)"
                } else {
                    x.as_str()
                };
                line.push_str(&format!("  via {x} {}", d.routing_keys.join(",")));
            }
            if let (Some(p), Some(o)) = (d.partition, d.offset) {
                line.push_str(&format!("  from partition {p} offset {o}"));
            }
            out.push(line);
            if let Some(e) = &d.error {
                out.push(format!("     {e}"));
            }
        }
    }
    if let Ok(serde_json::Value::Object(props)) = serde_json::to_value(&m.properties)
        && !props.is_empty()
    {
        out.push("▸ Properties".into());
        for (k, v) in props {
            out.push(format!(
                "  {k}: {}",
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            ));
        }
    }
    if !m.headers.is_empty() {
        out.push(format!("▸ Headers ({})", m.headers.len()));
        push_table(&mut out, &m.headers, 1);
    }
    out
}
