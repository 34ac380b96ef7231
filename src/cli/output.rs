//! Human-readable output of the subcommands: aligned tables and message blocks. JSON output
//! lives with the message format in `format::record`.

use crate::cli::guard::one_line;
use crate::format::decode::{DecodeError, Decoded, Decoder, Input};
pub use crate::format::text::payload_preview;
use crate::model::correlation::Extractor;
use crate::model::time::rfc3339;
use crate::model::topology::{Binding, DestinationKind, ExchangeSummary, VhostSummary};
use crate::model::{ConsumerGroup, Message, QueueKind, QueueSummary};
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

/// A plain text table: left-aligned text columns, right-aligned numeric ones.
pub struct Table {
    headers: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, bool)]) -> Self {
        Self {
            headers: columns.iter().map(|(h, _)| *h).collect(),
            right: columns.iter().map(|(_, r)| *r).collect(),
            rows: Vec::new(),
        }
    }

    /// A row of cells. Names come from whoever created them: a control character is shown
    /// as its picture here, before the widths are measured (a tab or a new line would
    /// break the row, an escape counts as no column and shifts the ones after it).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| {
                    if c.chars().any(char::is_control) {
                        one_line(&c)
                    } else {
                        c
                    }
                })
                .collect(),
        );
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.width());
                }
            }
        }
        let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut dyn Write| -> io::Result<()> {
            let mut text = String::new();
            for (i, c) in cells.enumerate() {
                let pad = widths[i].saturating_sub(c.width());
                if i > 0 {
                    text.push_str("  ");
                }
                if self.right[i] {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(c);
                } else {
                    text.push_str(c);
                    if i + 1 < widths.len() {
                        text.push_str(&" ".repeat(pad));
                    }
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
        line(&mut self.headers.iter().copied(), out)?;
        for r in &self.rows {
            line(&mut r.iter().map(String::as_str), out)?;
        }
        Ok(())
    }
}

fn num(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

fn rate(v: Option<f64>) -> String {
    match v {
        Some(r) if r >= 100.0 => format!("{r:.0}"),
        Some(r) => format!("{r:.1}"),
        None => "-".into(),
    }
}

pub fn queue_type_label(q: &QueueSummary) -> String {
    match (q.kind, q.partitions) {
        (QueueKind::Topic, Some(p)) => format!("topic/{p}p"),
        _ => q.queue_type.clone(),
    }
}

pub fn write_queue_table(queues: &[QueueSummary], out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(&[
        ("NAME", false),
        ("TYPE", false),
        ("MESSAGES", true),
        ("READY", true),
        ("UNACKED", true),
        ("CONSUMERS", true),
        ("IN/s", true),
        ("OUT/s", true),
        ("DEAD LETTERS", false),
        ("POLICY", false),
    ]);
    for q in queues {
        let dl = match (&q.dead_letter_queue, q.is_dead_letter) {
            (Some(dlq), _) => format!("-> {dlq}"),
            (None, true) if !q.dead_letter_sources.is_empty() => {
                format!("DLQ of {}", q.dead_letter_sources.join(", "))
            }
            (None, true) => "DLQ".into(),
            (None, false) => String::new(),
        };
        t.row(vec![
            q.name.clone(),
            queue_type_label(q),
            num(q.messages),
            num(q.ready),
            num(q.unacked),
            num(q.consumers),
            rate(q.publish_rate),
            rate(q.deliver_rate),
            dl,
            q.policy.clone().unwrap_or_default(),
        ]);
    }
    t.write(out)
}

/// Names as the management UI shows them: the default exchange has none.
fn exchange_label(name: &str) -> String {
    if name.is_empty() {
        "(AMQP default)".into()
    } else {
        name.to_string()
    }
}

pub fn write_vhost_table(vhosts: &[VhostSummary], out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(&[
        ("NAME", false),
        ("MESSAGES", true),
        ("READY", true),
        ("UNACKED", true),
        ("TRACING", false),
        ("QUEUE TYPE", false),
        ("DESCRIPTION", false),
    ]);
    for v in vhosts {
        t.row(vec![
            v.name.clone(),
            num(v.messages),
            num(v.ready),
            num(v.unacked),
            if v.tracing { "on" } else { "off" }.into(),
            v.default_queue_type.clone().unwrap_or_default(),
            v.description.clone().unwrap_or_default(),
        ]);
    }
    t.write(out)
}

/// Exchanges with the management UI's feature letters: D durable, AD auto-delete,
/// I internal.
pub fn write_exchange_table(exchanges: &[ExchangeSummary], out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(&[
        ("NAME", false),
        ("TYPE", false),
        ("FEATURES", false),
        ("IN/s", true),
        ("OUT/s", true),
        ("BINDINGS", true),
        ("ALTERNATE", false),
        ("POLICY", false),
    ]);
    for e in exchanges {
        let features: Vec<&str> = [(e.durable, "D"), (e.auto_delete, "AD"), (e.internal, "I")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect();
        t.row(vec![
            exchange_label(&e.name),
            e.kind.clone(),
            features.join(" "),
            rate(e.publish_in_rate),
            rate(e.publish_out_rate),
            e.bindings.to_string(),
            e.alternate_exchange.clone().unwrap_or_default(),
            e.policy.clone().unwrap_or_default(),
        ]);
    }
    t.write(out)
}

pub fn write_binding_table(bindings: &[Binding], out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(&[
        ("SOURCE", false),
        ("DESTINATION", false),
        ("KIND", false),
        ("ROUTING KEY", false),
        ("ARGUMENTS", false),
    ]);
    for b in bindings {
        let kind = match b.destination_kind {
            DestinationKind::Queue => "queue",
            DestinationKind::Exchange => "exchange",
        };
        t.row(vec![
            exchange_label(&b.source),
            b.destination.clone(),
            kind.into(),
            b.routing_key.clone(),
            if b.arguments.is_empty() {
                String::new()
            } else {
                b.arguments.to_json().to_string()
            },
        ]);
    }
    t.write(out)
}

pub fn write_group_table(groups: &[ConsumerGroup], out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(&[
        ("GROUP", false),
        ("STATE", false),
        ("MEMBERS", true),
        ("TOPICS", false),
        ("LAG", true),
        ("PARTITION LAG", false),
    ]);
    for g in groups {
        let per: Vec<String> = g
            .partitions
            .iter()
            .map(|p| format!("{}/{}={}", p.topic, p.partition, p.lag))
            .collect();
        t.row(vec![
            g.name.clone(),
            g.state.clone(),
            g.members.to_string(),
            g.topics.join(","),
            g.lag.to_string(),
            per.join(" "),
        ]);
    }
    t.write(out)
}

/// One message as a readable block.
pub fn write_message(
    m: &Message,
    extractor: &Extractor,
    decoder: &Decoder,
    out: &mut dyn Write,
) -> io::Result<()> {
    let decoded = decoder.decode(&Input::payload(m));
    let key_decoded = m.key.as_ref().and_then(|_| decoder.decode(&Input::key(m)));
    let place = match (m.partition, m.offset) {
        (Some(p), Some(o)) => format!("{}[{p}]@{o}", m.queue),
        _ => format!("{}#{}", m.queue, m.position),
    };
    let time = m
        .timestamp
        .as_ref()
        .map(rfc3339)
        .unwrap_or_else(|| "-".into());
    write!(out, "{place}  {time}  {} B", m.payload.len())?;
    if m.redelivered {
        write!(out, "  redelivered")?;
    }
    match (m.delivery_count.filter(|c| *c > 0), m.delivery_limit) {
        (c, Some(limit)) => write!(out, "  delivery count {}/{limit}", c.unwrap_or(0))?,
        (Some(c), None) => write!(out, "  delivered {c}×")?,
        (None, None) => {}
    }
    writeln!(out)?;
    if let Some(id) = &m.properties.message_id {
        writeln!(out, "  message id:  {id}")?;
    }
    let inside = || match &decoded {
        Some(Ok(d)) => extractor.extract_decoded(m, &d.value),
        _ => None,
    };
    if let Some(c) = extractor.extract(m).or_else(inside) {
        writeln!(out, "  correlation: {c}")?;
    }
    if let (Some(x), Some(k)) = (&m.exchange, &m.routing_key) {
        let x = if x.is_empty() { "(default)" } else { x };
        writeln!(out, "  routed:      {x} / {k}")?;
    }
    if let Some(r) = crate::model::routed_summary(m.routed_queues.as_deref()) {
        writeln!(out, "  reached:     {r}")?;
    }
    if let Some(k) = &m.key {
        writeln!(out, "  key:         {}", payload_preview(k, 60))?;
        write_decoded(out, "  key decoded: ", key_decoded.as_ref(), 60)?;
    }
    for d in m.deaths() {
        let mut line = format!("  dead letter: {} in {} ×{}", d.reason, d.queue, d.count);
        if let Some(t) = d.time {
            line.push_str(&format!(" at {}", rfc3339(&t)));
        }
        if let (Some(p), Some(o)) = (d.partition, d.offset) {
            line.push_str(&format!(" (from partition {p} offset {o})"));
        }
        if let Some(e) = &d.error {
            line.push_str(&format!(": {e}"));
        }
        writeln!(out, "{line}")?;
    }
    let headers: Vec<String> = m
        .headers
        .iter()
        .filter(|(k, _)| *k != "x-death")
        .map(|(k, v)| format!("{k}={}", payload_preview(v.to_string().as_bytes(), 60)))
        .collect();
    if !headers.is_empty() {
        writeln!(out, "  headers:     {}", headers.join("; "))?;
    }
    writeln!(out, "  payload:     {}", payload_preview(&m.payload, 200))?;
    write_decoded(out, "  decoded:     ", decoded.as_ref(), 200)?;
    writeln!(out)
}

/// What the decoder made of a payload or key: how it was read and the value as one line of
/// JSON, or why it could not be read.
fn write_decoded(
    out: &mut dyn Write,
    label: &str,
    decoded: Option<&Result<Decoded, DecodeError>>,
    max: usize,
) -> io::Result<()> {
    match decoded {
        Some(Ok(d)) => {
            let value = serde_json::to_string(&d.value).unwrap_or_default();
            writeln!(
                out,
                "{label}{}: {}",
                d.decoded_as.summary(),
                payload_preview(value.as_bytes(), max)
            )
        }
        Some(Err(e)) => writeln!(out, "{label}no: {e}"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;
    use crate::cli::guard::TextGuard;
    use crate::model::{QueueKind, QueueSummary};

    /// Queue names with a tab, a new line and an escape, as `mqscope queues` prints them
    /// (through the guard): one row each, every column where the header says.
    #[test]
    fn control_characters_in_names_keep_the_table_aligned() {
        let names = ["tab\there", "new\nline", "esc\u{1b}[31m", "plain"];
        let queues: Vec<QueueSummary> = names
            .iter()
            .map(|n| QueueSummary::new(*n, QueueKind::Queue, "classic"))
            .collect();
        let mut out = TextGuard::new(Vec::new(), true);
        write_queue_table(&queues, &mut out).unwrap();
        let text = String::from_utf8(out.inner).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + names.len(), "{text}");
        assert!(!text.contains('\t') && !text.contains('\u{1b}'), "{text:?}");
        let column = |l: &str| l.find("classic").map(|b| l[..b].width());
        let header = lines[0].find("TYPE").map(|b| lines[0][..b].width());
        for l in &lines[1..] {
            assert_eq!(column(l), header, "{text}");
        }
        assert!(lines[1].starts_with("tab\u{2409}here"), "{text}");
        assert!(lines[2].starts_with("new\u{240a}line"), "{text}");
    }
}
