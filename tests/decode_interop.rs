//! mqscope's Avro decoding against records written by another implementation: Python's
//! fastavro (scripts/test installs it and names its Python in MQSCOPE_PYTHON_AVRO), bare
//! through a queue's `.avsc` mapping and Confluent-framed through a schema id. Without it
//! the test skips, except under CI=true, where it fails.

use mqscope::format::decode::{Decoder, Input, LocalSchemas, Origin, Rule, Schema};
use std::path::Path;
use std::sync::Arc;

/// The record type with every Avro type, shared with the unit tests in `format::decode`.
const SCHEMA: &str = include_str!("decode_interop/order.avsc");
/// What it reads as, also shared.
const EXPECTED: &str = include_str!("decode_interop/order.json");

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
    let expected: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
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
