//! Times as people write them on a command line (`--since 15m`, `--idle 30s`, RFC 3339)
//! and as mqscope writes them (RFC 3339 with milliseconds).

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};

/// A time or duration that could not be read; the text names the flag and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TimeError(pub String);

fn err(text: String) -> TimeError {
    TimeError(text)
}

/// A time as mqscope writes it: RFC 3339, UTC, milliseconds.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parse `--since`: RFC 3339, or a duration ago such as 90s, 15m, 2h, 1d.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let looks_like_a_date = text.contains(['-', ':', 'T']) && text.len() >= 8;
    if looks_like_a_date {
        return Err(TimeError(format!(
            "--since \"{text}\": not an RFC 3339 time; write it in full, as 2026-01-01T12:00:00Z"
        )));
    }
    let d = parse_ago("--since", text)?;
    now.checked_sub_signed(d).ok_or_else(|| {
        TimeError(format!(
            "--since \"{text}\": that is further back than any date"
        ))
    })
}

/// A duration such as 90s, 15m, 2h or 1d (a bare number is seconds), for `flag`.
pub fn parse_ago(flag: &str, text: &str) -> Result<ChronoDuration, TimeError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| {
        if n.is_empty() {
            err(format!("{flag} \"{text}\": expected a duration like 15m"))
        } else {
            err(format!("{flag} \"{text}\": {n} is too large"))
        }
    })?;
    match unit {
        "s" | "" => ChronoDuration::try_seconds(n),
        "m" => ChronoDuration::try_minutes(n),
        "h" => ChronoDuration::try_hours(n),
        "d" => ChronoDuration::try_days(n),
        _ => {
            return Err(err(format!(
                "{flag} \"{text}\": the unit must be s, m, h or d"
            )));
        }
    }
    .ok_or_else(|| err(format!("{flag} \"{text}\": {n}{unit} is too long")))
}

/// Parse `--idle`: a duration such as 90s, 15m, 2h.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, TimeError> {
    parse_ago("--idle", text)?
        .to_std()
        .map_err(|_| TimeError(format!("--idle \"{text}\": not a duration like 30s or 5m")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("15m", now).unwrap(),
            now - ChronoDuration::minutes(15)
        );
        assert_eq!(
            parse_since("2h", now).unwrap(),
            now - ChronoDuration::hours(2)
        );
        assert_eq!(
            parse_since("90", now).unwrap(),
            now - ChronoDuration::seconds(90)
        );
        assert_eq!(
            parse_since("2025-12-31T00:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2025-12-30T23:00:00+00:00"
        );
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("5w", now).is_err());
        assert!(parse_since("99999999999999999999d", now).is_err());
        // Long enough to pass the number parse, too long for a date: an error, not a panic.
        let e = parse_since("99999999999d", now).unwrap_err().to_string();
        assert!(e.contains("further back than any date"), "{e}");
        let e = parse_since("2026-13-01T00:00:00Z", now)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an RFC 3339 time"), "{e}");
        let e = parse_duration("abc").unwrap_err().to_string();
        assert!(e.starts_with("--idle \"abc\""), "{e}");
        assert_eq!(
            parse_duration("90s").unwrap(),
            std::time::Duration::from_secs(90)
        );
    }
}
