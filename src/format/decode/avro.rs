//! Avro datums into JSON, walked beside their schema so logical types read as people write
//! them: decimals with their scale, dates, times and timestamps as ISO 8601 text, UUIDs as
//! text, enums as their symbol, and a union as the value it holds.

use super::{DecodeError, Format, bytes_value, float_value, time_text, whole};
use apache_avro::schema::{NamesRef, ResolvedSchema, Schema};
use apache_avro::types::Value as Av;
use chrono::{DateTime, NaiveDate, NaiveTime};
use serde_json::{Map, Value};

/// What apache-avro may allocate for one string, bytes or collection (its own default is
/// 512 MiB, which one hostile length prefix would claim). The setting is process-wide and
/// the first call fixes it.
const AVRO_ALLOCATION_LIMIT: usize = 64 << 20;

pub(super) fn decode(schema: &Schema, datum: &[u8], origin: &str) -> Result<Value, DecodeError> {
    apache_avro::util::max_allocation_bytes(AVRO_ALLOCATION_LIMIT);
    let mismatch = |e: apache_avro::Error| DecodeError::Mismatch {
        format: "avro",
        what: origin.to_string(),
        reason: e.to_string(),
    };
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| DecodeError::BadSchema {
        origin: origin.to_string(),
        reason: e.to_string(),
    })?;
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()
        .map_err(mismatch)?;
    let value = whole(Format::Avro, datum, |rest| {
        reader.read_value(rest).map_err(mismatch)
    })?;
    Ok(to_json(value, schema, resolved.get_names()))
}

/// `schema` is the one the value was read with; references are looked up in `names`.
fn to_json(v: Av, schema: &Schema, names: &NamesRef<'_>) -> Value {
    let schema = match schema {
        Schema::Ref { name } => names.get(name).copied().unwrap_or(schema),
        s => s,
    };
    match v {
        Av::Null => Value::Null,
        Av::Boolean(b) => Value::Bool(b),
        Av::Int(n) => Value::from(n),
        Av::Long(n) => Value::from(n),
        Av::Float(f) => float_value(f64::from(f)),
        Av::Double(f) => float_value(f),
        Av::Bytes(b) | Av::Fixed(_, b) => bytes_value(&b),
        Av::String(s) => Value::String(s),
        Av::Enum(_, symbol) => Value::String(symbol),
        Av::Union(i, inner) => {
            let variant = match schema {
                Schema::Union(u) => u.variants().get(i as usize),
                _ => None,
            };
            to_json(*inner, variant.unwrap_or(&Schema::Null), names)
        }
        Av::Array(items) => {
            let item = match schema {
                Schema::Array(a) => &*a.items,
                _ => &Schema::Null,
            };
            Value::Array(items.into_iter().map(|v| to_json(v, item, names)).collect())
        }
        Av::Map(entries) => {
            let of = match schema {
                Schema::Map(m) => &*m.types,
                _ => &Schema::Null,
            };
            // A HashMap underneath: sorted, so the same datum always reads the same.
            let mut entries: Vec<_> = entries.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, to_json(v, of, names)))
                    .collect::<Map<_, _>>(),
            )
        }
        Av::Record(fields) => {
            let schemas = match schema {
                Schema::Record(r) => r.fields.iter().map(|f| &f.schema).collect(),
                _ => Vec::new(),
            };
            Value::Object(
                fields
                    .into_iter()
                    .enumerate()
                    .map(|(i, (k, v))| {
                        let s = schemas.get(i).copied().unwrap_or(&Schema::Null);
                        (k, to_json(v, s, names))
                    })
                    .collect::<Map<_, _>>(),
            )
        }
        Av::Decimal(d) => {
            let scale = match schema {
                Schema::Decimal(d) => d.scale,
                _ => 0,
            };
            let unscaled: num_bigint::BigInt = d.into();
            Value::String(with_scale(&unscaled.to_string(), scale))
        }
        Av::BigDecimal(d) => Value::String(d.to_string()),
        Av::Uuid(u) => Value::String(u.to_string()),
        Av::Date(days) => text_or(days, date(days)),
        Av::TimeMillis(ms) => text_or(ms, time(i64::from(ms) * 1_000_000)),
        Av::TimeMicros(us) => text_or(us, time(us.saturating_mul(1_000))),
        Av::TimestampMillis(n) => {
            text_or(n, DateTime::from_timestamp_millis(n).map(|t| time_text(&t)))
        }
        Av::TimestampMicros(n) => {
            text_or(n, DateTime::from_timestamp_micros(n).map(|t| time_text(&t)))
        }
        Av::TimestampNanos(n) => text_or(n, Some(time_text(&DateTime::from_timestamp_nanos(n)))),
        Av::LocalTimestampMillis(n) => text_or(n, local(DateTime::from_timestamp_millis(n))),
        Av::LocalTimestampMicros(n) => text_or(n, local(DateTime::from_timestamp_micros(n))),
        Av::LocalTimestampNanos(n) => text_or(n, local(Some(DateTime::from_timestamp_nanos(n)))),
        Av::Duration(d) => {
            let mut o = Map::new();
            o.insert("months".into(), Value::from(u32::from(d.months())));
            o.insert("days".into(), Value::from(u32::from(d.days())));
            o.insert("millis".into(), Value::from(u32::from(d.millis())));
            Value::Object(o)
        }
    }
}

/// The readable text, or the number itself when it is out of any calendar's range.
fn text_or(n: impl Into<Value>, text: Option<String>) -> Value {
    text.map(Value::String).unwrap_or_else(|| n.into())
}

fn date(days: i32) -> Option<String> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let d = epoch.checked_add_signed(chrono::Duration::days(i64::from(days)))?;
    Some(d.format("%Y-%m-%d").to_string())
}

/// A time of day from nanoseconds after midnight.
fn time(nanos: i64) -> Option<String> {
    let secs = u32::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let frac = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    let t = NaiveTime::from_num_seconds_from_midnight_opt(secs, frac)?;
    Some(t.format("%H:%M:%S%.f").to_string())
}

/// A local timestamp has no zone: written without one.
fn local(t: Option<DateTime<chrono::Utc>>) -> Option<String> {
    Some(t?.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string())
}

/// An unscaled integer's digits with the decimal point `scale` places from the right.
fn with_scale(digits: &str, scale: usize) -> String {
    if scale == 0 {
        return digits.to_string();
    }
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", digits),
    };
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(with_scale("12345", 2), "123.45");
        assert_eq!(with_scale("-5", 3), "-0.005");
        assert_eq!(with_scale("0", 2), "0.00");
        assert_eq!(with_scale("7", 0), "7");
    }

    #[test]
    fn times_and_dates_read_as_iso_8601() {
        assert_eq!(date(19_000).as_deref(), Some("2022-01-08"));
        assert_eq!(date(-1).as_deref(), Some("1969-12-31"));
        assert_eq!(time(3_723_004_000_000).as_deref(), Some("01:02:03.004"));
        assert_eq!(time(-1), None);
        assert_eq!(text_or(i32::MAX, date(i32::MAX)), Value::from(i32::MAX));
    }
}
