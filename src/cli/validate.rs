//! Clap's value parsers: a bad queue name, `--since`, `--to` or `--idle` is a usage error
//! (exit 2) before anything connects.

use crate::model::time::{parse_duration, parse_since};
use chrono::Utc;

/// Clap's check of a `--since` value, so a bad one is a usage error (exit 2).
pub fn valid_since(text: &str) -> Result<String, String> {
    parse_since(text, Utc::now())
        .map(|_| text.to_string())
        .map_err(|e| reason_only(&e.into()))
}

/// The reason without the `--flag "value": ` that clap's own message already gives.
fn reason_only(e: &anyhow::Error) -> String {
    let text = e.to_string();
    match text.split_once("\": ") {
        Some((_, reason)) => reason.to_string(),
        None => text,
    }
}

/// Clap's check of a queue, stream, topic or correlation ID given on the command line. An
/// empty one is most often an unset shell variable, and must not go further: the management
/// API answers a request for the queue "" with the whole queue list, and a replay would
/// journal it. A name of spaces is left alone: RabbitMQ allows it, and it reaches nothing
/// else by mistake.
pub fn valid_name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("it is empty (an unset shell variable?)".into());
    }
    Ok(text.to_string())
}

/// Clap's check of `replay --to`.
pub fn valid_to(text: &str) -> Result<String, String> {
    crate::ops::replay::ToTarget::parse(text)
        .map(|_| text.to_string())
        .map_err(|e| reason_only(&e.into()))
}

/// Clap's check of an `--idle` value.
pub fn valid_idle(text: &str) -> Result<String, String> {
    parse_duration(text)
        .map(|_| text.to_string())
        .map_err(|e| reason_only(&e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_since_is_a_usage_error_without_the_flag_it_came_with() {
        assert_eq!(
            valid_since("5w").unwrap_err(),
            "the unit must be s, m, h or d"
        );
    }
}
