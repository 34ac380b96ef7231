//! mqscope's Avro decoding against records written by another implementation: Python's
//! fastavro (scripts/test installs it and names its Python in MQSCOPE_PYTHON_AVRO), bare
//! through a queue's `.avsc` mapping and Confluent-framed through a schema id. Without it
//! the test skips, except under CI=true, where it fails.

use mqscope::format::decode::{Decoder, Input, LocalSchemas, Origin, Rule, Schema};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

const SCHEMA: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "nothing", "type": "null"},
    {"name": "paid", "type": "boolean"},
    {"name": "qty", "type": "int"},
    {"name": "id", "type": "long"},
    {"name": "ratio", "type": "float"},
    {"name": "price", "type": "double"},
    {"name": "blob", "type": "bytes"},
    {"name": "name", "type": "string"},
    {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID"]}},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "note", "type": ["null", "string"]},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "fee", "type": ["null", {"type": "fixed", "name": "Fee", "size": 4, "logicalType": "decimal", "precision": 6, "scale": 3}]},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "at_ms", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "at_us", "type": {"type": "long", "logicalType": "time-micros"}},
    {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "local_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
    {"name": "again", "type": ["null", "Hash"]}
  ]
}"#;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn records_written_by_fastavro_decode_with_every_type_readable() {
    let Ok(python) = std::env::var("MQSCOPE_PYTHON_AVRO") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "MQSCOPE_PYTHON_AVRO is not set in CI; scripts/test should have installed fastavro"
            );
        }
        eprintln!("skipping: MQSCOPE_PYTHON_AVRO is not set (scripts/test sets it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema_file = dir.path().join("order.avsc");
    std::fs::write(&schema_file, SCHEMA).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/decode_interop/write.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(&schema_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (bare, framed) = (hex(lines[0]), hex(lines[1]));

    let mut schemas = LocalSchemas::default();
    schemas.add_queue(
        "orders",
        false,
        Schema::avro(SCHEMA, Origin::File("order.avsc".into())).unwrap(),
    );
    schemas.add_id(
        42,
        Schema::avro(SCHEMA, Origin::Subject("orders-value".into())).unwrap(),
    );
    let rule = Rule {
        schema: Some("order.avsc".into()),
        ..Rule::default()
    };
    let decoder = Decoder::new([("orders".to_string(), rule)].into(), Arc::new(schemas));
    let expected = json!({
        "nothing": null, "paid": true, "qty": -3, "id": 9_007_199_254_740_993i64,
        "ratio": 0.25, "price": 19.99, "blob": {"base64": "/60="}, "name": "Zoë",
        "state": "PAID", "hash": "ok", "tags": ["a", "b"], "attrs": {"a": 2, "z": 1},
        "note": "fragile", "amount": "123.45", "fee": "-0.005",
        "ref": "6f1b0c9e-3a52-4e6e-9d0e-1f2a3b4c5d6e", "day": "2022-01-08",
        "at_ms": "01:02:03.004", "at_us": "01:02:03.004005",
        "ts_ms": "2023-11-14T22:13:20.123Z", "ts_us": "2023-11-14T22:13:20.123456Z",
        "local_ms": "2023-11-14T22:13:20", "again": {"base64": "//4="}
    });
    let input = |queue, bytes| Input {
        bytes,
        queue,
        ..Input::default()
    };
    let got = decoder.decode(&input("orders", &bare)).unwrap().unwrap();
    assert_eq!(got.value, expected);
    assert_eq!(got.decoded_as.file.as_deref(), Some("order.avsc"));
    let got = decoder
        .decode(&input("elsewhere", &framed))
        .unwrap()
        .unwrap();
    assert_eq!(got.value, expected);
    assert_eq!(got.decoded_as.schema_id, Some(42));
    assert_eq!(got.decoded_as.subject.as_deref(), Some("orders-value"));
}
