//! mqscope's Avro and Protobuf decoding against records written by other implementations:
//! Python's fastavro and protobuf (scripts/test installs them and names their Pythons in
//! MQSCOPE_PYTHON_AVRO and MQSCOPE_PYTHON_PROTOBUF), bare through a queue's schema file
//! mapping and Confluent-framed through a schema id. Without them the tests skip, except
//! under CI=true, where they fail.

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
    let Some(python) = python("MQSCOPE_PYTHON_AVRO") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema_file = dir.path().join("order.avsc");
    std::fs::write(&schema_file, SCHEMA).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/decode_interop/write.py");
    let text = run(&python, &script, &[&schema_file]);
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

/// The Python interpreter `var` names (scripts/test installs it), or `None` to skip;
/// under CI=true a missing one fails.
fn python(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) => Some(p),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{var} is not set in CI; scripts/test should have installed it")
        }
        Err(_) => {
            eprintln!("skipping: {var} is not set (scripts/test sets it)");
            None
        }
    }
}

/// What `script` run by `python` with `args` prints; its failure fails the test.
fn run(python: &str, script: &Path, args: &[&Path]) -> String {
    let out = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Messages written by Python's `protobuf` (its own encoder) read as its
/// `json_format.MessageToDict(msg, preserving_proto_field_name=True)` reads them: bare
/// through a queue's `.proto` and message name, and Confluent-framed (schema id 7, message
/// indexes [0], [1] and [1, 0]) through a registry-style schema text.
#[test]
fn messages_written_by_python_protobuf_decode_as_its_json_format_reads_them() {
    let Some(python) = python("MQSCOPE_PYTHON_PROTOBUF") else {
        return;
    };
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/decode_interop");
    let proto = std::fs::read_to_string(here.join("order.proto")).unwrap();
    // Python gets the schema as a descriptor set: there is no protoc here, and this is
    // protox's compile of the same file mqscope reads.
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("order.desc");
    let mut compiler = protox::Compiler::new([&here]).unwrap();
    compiler.include_imports(true);
    compiler.open_file("order.proto").unwrap();
    std::fs::write(&set, compiler.encode_file_descriptor_set()).unwrap();
    let text = run(
        &python,
        &here.join("write_pb.py"),
        &[&set, &here.join("order_pb.json")],
    );

    let mut schemas = LocalSchemas::default();
    let mut rules = std::collections::BTreeMap::new();
    let names = ["shop.Order", "shop.Refund", "shop.Refund.Reason"];
    for name in names {
        let resolver = protox::file::IncludeFileResolver::new(here.clone());
        let file = Origin::File("order.proto".into());
        let schema = Schema::protobuf_compiled("order.proto", resolver, Some(name), file).unwrap();
        schemas.add_queue(name, false, schema);
        let rule = Rule {
            schema: Some("order.proto".into()),
            message: Some(name.into()),
            ..Rule::default()
        };
        rules.insert(name.to_string(), rule);
    }
    let subject = Origin::Subject("orders-value".into());
    schemas.add_id(7, Schema::protobuf_from_text(&proto, &[], subject).unwrap());
    let decoder = Decoder::new(rules, Arc::new(schemas));

    let mut seen = Vec::new();
    for line in text.lines() {
        let [name, bare, framed, shown] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("bad line from write_pb.py: {line}");
        };
        let expected: serde_json::Value = serde_json::from_str(shown).unwrap();
        let input = |queue, bytes| Input {
            bytes,
            queue,
            ..Input::default()
        };
        let (bare, framed) = (hex(bare), hex(framed));
        let got = decoder.decode(&input(name, &bare)).unwrap().unwrap();
        assert_eq!(got.value, expected, "{name}, bare");
        assert_eq!(got.decoded_as.message.as_deref(), Some(name));
        let got = decoder
            .decode(&input("elsewhere", &framed))
            .unwrap()
            .unwrap();
        assert_eq!(got.value, expected, "{name}, framed");
        assert_eq!(got.decoded_as.message.as_deref(), Some(name));
        assert_eq!(got.decoded_as.schema_id, Some(7));
        seen.push(name.to_string());
    }
    assert_eq!(seen, names);
}
