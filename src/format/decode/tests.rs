//! The decoder as the front ends use it: rules, hints, framing, schemas, and bad input.

use super::compress::tests::gzip;
use super::*;
use apache_avro::types::Value as Av;
use proptest::prelude::*;
use serde_json::json;

/// A record with every Avro type; what it reads as is `order.json` beside it (both shared
/// with the fastavro interop test).
const EVERY_TYPE: &str = include_str!("../../../tests/decode_interop/order.avsc");

fn every_type_datum(schema: &apache_avro::Schema) -> Vec<u8> {
    let value = Av::Record(vec![
        ("nothing".into(), Av::Null),
        ("paid".into(), Av::Boolean(true)),
        ("qty".into(), Av::Int(-3)),
        ("id".into(), Av::Long(9_007_199_254_740_993)),
        ("ratio".into(), Av::Float(0.25)),
        ("price".into(), Av::Double(19.99)),
        ("blob".into(), Av::Bytes(vec![0xff, 0xad])),
        ("name".into(), Av::String("Zoë".into())),
        ("state".into(), Av::Enum(1, "PAID".into())),
        ("hash".into(), Av::Fixed(2, b"ok".to_vec())),
        (
            "tags".into(),
            Av::Array(vec![Av::String("a".into()), Av::String("b".into())]),
        ),
        (
            "attrs".into(),
            Av::Map(
                [
                    ("z".to_string(), Av::Long(1)),
                    ("a".to_string(), Av::Long(2)),
                ]
                .into(),
            ),
        ),
        (
            "note".into(),
            Av::Union(1, Box::new(Av::String("fragile".into()))),
        ),
        (
            "amount".into(),
            Av::Decimal(apache_avro::Decimal::from(12_345i32.to_be_bytes())),
        ),
        (
            "fee".into(),
            Av::Union(
                1,
                Box::new(Av::Decimal(apache_avro::Decimal::from(
                    (-5i32).to_be_bytes(),
                ))),
            ),
        ),
        (
            "ref".into(),
            Av::Uuid("6f1b0c9e-3a52-4e6e-9d0e-1f2a3b4c5d6e".parse().unwrap()),
        ),
        ("day".into(), Av::Date(19_000)),
        ("at_ms".into(), Av::TimeMillis(3_723_004)),
        ("at_us".into(), Av::TimeMicros(3_723_004_005)),
        ("ts_ms".into(), Av::TimestampMillis(1_700_000_000_123)),
        ("ts_us".into(), Av::TimestampMicros(1_700_000_000_123_456)),
        (
            "local_ms".into(),
            Av::LocalTimestampMillis(1_700_000_000_000),
        ),
        (
            "again".into(),
            Av::Union(1, Box::new(Av::Fixed(2, vec![0xff, 0xfe]))),
        ),
    ]);
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap()
}

fn every_type_schema() -> apache_avro::Schema {
    apache_avro::Schema::parse_str(EVERY_TYPE).unwrap()
}

fn every_type_json() -> Value {
    serde_json::from_str(include_str!("../../../tests/decode_interop/order.json")).unwrap()
}

/// The every-type schema mapped to `queue` from `file`, and registered as `id` of `subject`.
fn every_type_schemas(queue: &str, file: &str, id: u32, subject: &str) -> LocalSchemas {
    let mut schemas = LocalSchemas::default();
    let schema = |origin| Schema::avro(EVERY_TYPE, origin).unwrap();
    schemas.add_queue(queue, false, schema(Origin::File(file.into())));
    schemas.add_id(id, schema(Origin::Subject(subject.into())));
    schemas
}

fn avro_decoder(framing: Option<FramingRule>) -> Decoder {
    let schemas = every_type_schemas("orders", "orders.avsc", 42, "orders-value");
    let rule = Rule {
        format: Some(Format::Avro),
        schema: Some("orders.avsc".into()),
        framing,
        ..Rule::default()
    };
    Decoder::new([("orders".to_string(), rule)].into(), Arc::new(schemas))
}

pub(super) fn input<'a>(queue: &'a str, bytes: &'a [u8]) -> Input<'a> {
    Input {
        bytes,
        queue,
        ..Input::default()
    }
}

/// A decoder that reads `queue` as `format`, through `schema` where one is mapped to it.
pub(super) fn reading(queue: &str, format: Format, schema: Option<Schema>) -> Decoder {
    let mut schemas = LocalSchemas::default();
    if let Some(schema) = schema {
        schemas.add_queue(queue, false, schema);
    }
    let rule = Rule {
        format: Some(format),
        ..Rule::default()
    };
    Decoder::new([(queue.to_string(), rule)].into(), Arc::new(schemas))
}

/// A decoder with no rules that knows the schemas of these ids, as a registry gives them.
pub(super) fn by_ids<const N: usize>(ids: [(u32, Schema); N]) -> Decoder {
    let mut schemas = LocalSchemas::default();
    for (id, schema) in ids {
        schemas.add_id(id, schema);
    }
    Decoder::new(BTreeMap::new(), Arc::new(schemas))
}

/// The Avro schema `"long"`, from a file `n.avsc`.
pub(super) fn avro_long() -> Schema {
    Schema::avro(r#""long""#, Origin::File("n.avsc".into())).unwrap()
}

#[test]
fn avro_through_a_local_avsc_reads_every_type_readably() {
    let d = avro_decoder(None);
    let schema = &every_type_schema();
    let datum = every_type_datum(schema);
    let got = d.decode(&input("orders", &datum)).unwrap().unwrap();
    assert_eq!(got.value, every_type_json());
    assert_eq!(got.decoded_as.format, "avro");
    assert_eq!(got.decoded_as.file.as_deref(), Some("orders.avsc"));
    assert_eq!(got.decoded_as.schema_id, None);
}

#[test]
fn confluent_framed_avro_names_its_schema_id_and_subject() {
    let d = avro_decoder(None);
    let schema = &every_type_schema();
    let mut body = vec![0, 0, 0, 0, 42];
    body.extend(every_type_datum(schema));
    let got = d.decode(&input("orders", &body)).unwrap().unwrap();
    assert_eq!(got.value, every_type_json());
    assert_eq!(got.decoded_as.schema_id, Some(42));
    assert_eq!(got.decoded_as.subject.as_deref(), Some("orders-value"));
    // With no rule for the topic, a known id is enough to recognise the framing.
    let got = d.decode(&input("elsewhere", &body)).unwrap().unwrap();
    assert_eq!(got.decoded_as.schema_id, Some(42));
    // An unknown id on an unmapped topic is not a guess: nothing is decoded.
    body[4] = 43;
    assert!(d.decode(&input("elsewhere", &body)).is_none());
}

#[test]
fn an_unknown_schema_id_is_reported_for_a_registry_to_fetch() {
    let d = avro_decoder(Some(FramingRule::Confluent));
    let e = d.decode(&input("orders", &[0, 0, 0, 0, 7, 2])).unwrap();
    // Mapped to a file, the file reads the datum after the framing.
    assert!(e.is_err());
    let d = reading("t", Format::Avro, None);
    let e = d
        .decode(&input("t", &[0, 0, 0, 0, 7, 2]))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.unknown_id(), Some(7));
    assert_eq!(
        e.to_string(),
        "schema id 7 is unknown (no registry or local file gives it)"
    );
    let e = d.decode(&input("t", b"\x02abc")).unwrap().unwrap_err();
    assert_eq!(e, DecodeError::NoSchema { format: "avro" });
}

#[test]
fn a_payload_that_does_not_match_its_schema_says_so() {
    let d = avro_decoder(Some(FramingRule::None));
    let e = d
        .decode(&input("orders", b"\x00\x01"))
        .unwrap()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("avro does not match orders.avsc:"),
        "{e}"
    );
    let d = reading("n", Format::Avro, Some(avro_long()));
    // A varint whose continuation bit never ends.
    let e = d.decode(&input("n", &[0xff, 0xff])).unwrap().unwrap_err();
    assert!(matches!(e, DecodeError::Mismatch { .. }), "{e}");
    let e = d.decode(&input("n", &[0x02, 0x02])).unwrap().unwrap_err();
    assert_eq!(e.to_string(), "avro: 1 bytes left over after the value");
}

#[test]
fn a_gzip_content_encoding_json_body_is_decoded_and_said_so() {
    let d = Decoder::default();
    let body = gzip(br#"{"order": 7, "items": ["a"]}"#);
    let mut i = input("q", &body);
    i.content_encoding = Some("gzip");
    let got = d.decode(&i).unwrap().unwrap();
    assert_eq!(got.value, json!({"order": 7, "items": ["a"]}));
    assert_eq!(got.decoded_as.format, "json");
    assert_eq!(got.decoded_as.compression, Some("gzip"));
    assert_eq!(got.decoded_as.compression_from, Some("content_encoding"));
    // The same bytes with no content_encoding: recognised by their magic bytes.
    let got = d.decode(&input("q", &body)).unwrap().unwrap();
    assert_eq!(got.decoded_as.compression_from, Some("magic bytes"));
    // Compressed text that is not JSON is shown as text.
    let got = d
        .decode(&input("q", &gzip(b"plain words")))
        .unwrap()
        .unwrap();
    assert_eq!(got.value, json!("plain words"));
    assert_eq!(got.decoded_as.format, "text");
}

#[test]
fn content_types_choose_msgpack_and_cbor_and_plain_payloads_are_left_alone() {
    let d = Decoder::default();
    let mut mp = Vec::new();
    rmpv::encode::write_value(&mut mp, &rmpv::Value::Map(vec![("k".into(), 1.into())])).unwrap();
    let mut i = input("q", &mp);
    i.content_type = Some("application/msgpack");
    assert_eq!(d.decode(&i).unwrap().unwrap().value, json!({"k": 1}));
    let mut cb = Vec::new();
    ciborium::ser::into_writer(&ciborium::Value::Array(vec![1.into()]), &mut cb).unwrap();
    let mut i = input("q", &cb);
    i.content_type = Some("application/cbor; charset=binary");
    assert_eq!(d.decode(&i).unwrap().unwrap().value, json!([1]));
    assert!(d.decode(&input("q", br#"{"plain": true}"#)).is_none());
    assert!(d.decode(&input("q", b"\x00\x01binary")).is_none());
    let mut i = input("q", b"x");
    i.content_encoding = Some("br");
    let e = d.decode(&i).unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "content_encoding \"br\" is not one mqscope reads (gzip, deflate or zstd)"
    );
}

#[test]
fn keys_follow_the_key_rule() {
    let rule = Rule {
        key: Some(Box::new(Rule {
            format: Some(Format::Msgpack),
            ..Rule::default()
        })),
        ..Rule::default()
    };
    let d = Decoder::new(
        [("t".to_string(), rule)].into(),
        Arc::new(LocalSchemas::default()),
    );
    let mut i = input("t", &[0x2a]);
    i.key = true;
    assert_eq!(d.decode(&i).unwrap().unwrap().value, json!(42));
    // The payload rule has no format: a plain payload stays as it is.
    assert!(d.decode(&input("t", &[0x2a])).is_none());
}

#[test]
fn a_large_body_is_not_decoded_and_a_bomb_is_cut() {
    let d = Decoder::default().with_limit(1 << 20);
    let big = vec![0xc0; (1 << 20) + 1];
    let mut i = input("q", &big);
    i.content_type = Some("application/msgpack");
    let e = d.decode(&i).unwrap().unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooLarge {
            size: (1 << 20) + 1,
            limit: 1 << 20
        }
    );
    let bomb = gzip(&vec![b'['; 50 << 20]);
    let e = d.decode(&input("q", &bomb)).unwrap().unwrap_err();
    assert!(matches!(e, DecodeError::Cut { codec: "gzip", .. }), "{e}");
}

fn all_decoders() -> Decoder {
    let schemas = every_type_schemas("avro", "o.avsc", 1, "s");
    let rules = [
        ("json", Format::Json),
        ("avro", Format::Avro),
        ("msgpack", Format::Msgpack),
        ("cbor", Format::Cbor),
        ("text", Format::Text),
    ]
    .into_iter()
    .map(|(q, f)| {
        let rule = Rule {
            format: Some(f),
            ..Rule::default()
        };
        (q.to_string(), rule)
    })
    .collect();
    Decoder::new(rules, Arc::new(schemas)).with_limit(64 << 10)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes, under any rule and encoding: a value or a reason, never a panic or a hang.
    #[test]
    fn any_bytes_decode_or_say_why(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        queue in prop::sample::select(vec!["json", "avro", "msgpack", "cbor", "text", "none"]),
        encoding in prop::sample::select(vec![None, Some("gzip"), Some("deflate"), Some("zstd")]),
    ) {
        let d = all_decoders();
        let mut i = input(queue, &bytes);
        i.content_encoding = encoding;
        if let Some(Err(e)) = d.decode(&i) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Valid compressed bodies with their tails cut or a byte flipped.
    #[test]
    fn damaged_compressed_bodies_decode_or_say_why(
        cut in 0usize..64,
        flip in any::<(usize, u8)>(),
        codec in prop::sample::select(vec!["gzip", "zstd"]),
    ) {
        let body = br#"{"order": 7, "items": ["a", "b", "c"], "note": "some text"}"#;
        let mut packed = if codec == "gzip" { gzip(body) } else { zstd::encode_all(&body[..], 3).unwrap() };
        let at = flip.0 % packed.len();
        packed[at] ^= flip.1;
        packed.truncate(packed.len().saturating_sub(cut));
        let d = all_decoders();
        let mut i = input("json", &packed);
        i.content_encoding = Some(codec);
        let _ = d.decode(&i);
    }
}

#[test]
fn a_message_content_type_wins_over_the_queue_rule() {
    let d = avro_decoder(None);
    let mut i = input("orders", br#"{"a": 1}"#);
    i.content_type = Some("application/json");
    // JSON needs no decoding: left as the payload, not read as Avro by the rule.
    assert!(d.decode(&i).is_none());
    let mut i = input("orders", &[0x81, 0x01, 0x02]);
    i.content_type = Some("application/msgpack");
    assert_eq!(d.decode(&i).unwrap().unwrap().value, json!({"1": 2}));
}

#[test]
fn a_fifty_megabyte_body_is_refused_with_its_size() {
    let big = vec![0x90; 50 << 20];
    let mut i = input("q", &big);
    i.content_type = Some("application/msgpack");
    let e = Decoder::default().decode(&i).unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "body of 52428800 bytes is over the 1048576-byte decode limit: not decoded"
    );
}

/// A source whose registry was asked for id 9 and failed.
struct Unreachable;

impl SchemaSource for Unreachable {
    fn by_id(&self, _id: u32) -> Option<Arc<Schema>> {
        None
    }
    fn for_queue(&self, _queue: &str, _key: bool) -> Option<Arc<Schema>> {
        None
    }
    fn missing(&self, id: u32) -> Option<String> {
        (id == 9).then(|| "registry unreachable".to_string())
    }
}

#[test]
fn a_framed_body_whose_registry_lookup_failed_says_why_and_others_stay_undecoded() {
    let d = Decoder::new(BTreeMap::new(), Arc::new(Unreachable));
    let e = d
        .decode(&input("t", &[0, 0, 0, 0, 9, 2]))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.to_string(), "schema id 9: registry unreachable");
    // An id nobody asked for: not taken for framing at all.
    assert!(d.decode(&input("t", &[0, 0, 0, 0, 8, 2])).is_none());
}

#[test]
fn registry_schemas_read_avro_with_references_and_json_schema_payloads() {
    let money = r#"{"type":"record","name":"Money","namespace":"shop","fields":[
        {"name":"units","type":"long"},{"name":"currency","type":"string"}]}"#;
    let order = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"total","type":"Money"},{"name":"refund","type":["null","shop.Money"]}]}"#;
    let avro = Schema::from_registry(
        "",
        order,
        &[("shop.Money".into(), money.into())],
        Origin::Subject("orders-value".into()),
    )
    .unwrap();
    let json_schema =
        Schema::from_registry("JSON", r#"{"type":"object"}"#, &[], Origin::Id(4)).unwrap();
    let d = by_ids([(3, avro), (4, json_schema)]);
    // total {250, "EUR"}, refund null: long 250 is zigzag 500 (0xf4 0x03).
    let got = d
        .decode(&input("t", b"\0\0\0\0\x03\xf4\x03\x06EUR\0"))
        .unwrap()
        .unwrap();
    assert_eq!(
        got.value,
        json!({"total": {"units": 250, "currency": "EUR"}, "refund": null})
    );
    assert_eq!(got.decoded_as.subject.as_deref(), Some("orders-value"));
    let got = d
        .decode(&input("t", b"\0\0\0\0\x04{\"a\": [1]}"))
        .unwrap()
        .unwrap();
    assert_eq!(got.value, json!({"a": [1]}));
    assert_eq!(got.decoded_as.format, "json");
    assert_eq!(got.decoded_as.schema_id, Some(4));
    assert_eq!(got.decoded_as.subject, None);

    // Protobuf, with an import the registry gives as a reference.
    let common = "syntax = \"proto3\"; package shop; message Money { int64 units = 1; }";
    let pb_order = "syntax = \"proto3\"; package shop; import \"common.proto\"; message Order { shop.Money total = 1; }";
    let refs = [("common.proto".to_string(), common.to_string())];
    let pb = Schema::from_registry(
        "PROTOBUF",
        pb_order,
        &refs,
        Origin::Subject("o-value".into()),
    )
    .unwrap();
    let d = by_ids([(5, pb)]);
    // Framed, message index [0] (the single-zero shortcut), total { units: 7 }.
    let got = d
        .decode(&input("t", b"\0\0\0\0\x05\0\x0a\x02\x08\x07"))
        .unwrap()
        .unwrap();
    assert_eq!(got.value, json!({"total": {"units": "7"}}));
    assert_eq!(got.decoded_as.format, "protobuf");
    assert_eq!(got.decoded_as.message.as_deref(), Some("shop.Order"));
    let e = Schema::from_registry("PROTOBUF", pb_order, &[], Origin::Id(5)).unwrap_err();
    assert!(e.to_string().contains("common.proto"), "{e}");
    let e = Schema::from_registry("", order, &[], Origin::Id(6)).unwrap_err();
    assert!(e.to_string().starts_with("schema schema id 6: "), "{e}");
    let e = Schema::from_registry("XML", "<a/>", &[], Origin::Id(7)).unwrap_err();
    assert!(e.to_string().contains("\"XML\" is not one"), "{e}");
}
