//! Protobuf through the decoder: by a queue's `.proto` and message name, by Confluent
//! message indexes, registry texts with references, descriptor sets, and bad input.

use super::protobuf::Texts;
use super::tests::{avro_long, by_ids, input, reading};
use super::*;
use proptest::prelude::*;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, Value as Pv};
use serde_json::json;

/// The schema and the values shared with the Python interop test.
const ORDER_PROTO: &str = include_str!("../../../tests/decode_interop/order.proto");
const VALUES: &str = include_str!("../../../tests/decode_interop/order_pb.json");

fn values() -> Value {
    serde_json::from_str(VALUES).unwrap()
}

fn pool() -> DescriptorPool {
    let mut chain = protox::file::ChainFileResolver::new();
    chain.add(Texts(vec![("order.proto".into(), ORDER_PROTO.into())]));
    chain.add(protox::file::GoogleFileResolver::new());
    let mut c = protox::Compiler::with_file_resolver(chain);
    c.include_imports(true);
    c.open_file("order.proto").unwrap();
    c.descriptor_pool()
}

fn local(message: &str) -> Schema {
    Schema::protobuf(
        pool(),
        "order.proto",
        Some(message),
        Origin::File("order.proto".into()),
    )
    .unwrap()
}

/// `value` (proto3 JSON) as the wire bytes of `message`, by prost-reflect's encoder.
fn encode(message: &str, value: &Value) -> Vec<u8> {
    let desc = pool().get_message_by_name(message).unwrap();
    let msg = DynamicMessage::deserialize(desc, value).unwrap();
    msg.encode_to_vec()
}

/// Queue `orders` reads `shop.Order` from the local file, `refunds` `shop.Refund`; schema
/// id 7 is the file as a registry would give it, with no message named.
fn decoder() -> Decoder {
    let mut schemas = LocalSchemas::default();
    schemas.add_queue("orders", false, local("shop.Order"));
    schemas.add_queue("refunds", false, local("Refund"));
    schemas.add_id(
        7,
        Schema::protobuf_from_text(ORDER_PROTO, &[], Origin::Subject("orders-value".into()))
            .unwrap(),
    );
    let rule = |message: &str| Rule {
        schema: Some("order.proto".into()),
        message: Some(message.into()),
        ..Rule::default()
    };
    let rules = [
        ("orders".to_string(), rule("shop.Order")),
        ("refunds".to_string(), rule("Refund")),
    ];
    Decoder::new(rules.into(), Arc::new(schemas))
}

fn framed(indexes: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0, 7];
    out.extend(indexes);
    out.extend(body);
    out
}

#[test]
fn a_local_proto_and_message_name_read_every_kind_of_field_by_the_json_mapping() {
    let order = &values()["shop.Order"];
    let body = encode("shop.Order", order);
    let got = decoder().decode(&input("orders", &body)).unwrap().unwrap();
    // int64s as strings, enums by name, bytes in base64, a Timestamp as RFC 3339, maps
    // and a Struct as objects, the oneof's one field, an optional zero that was set.
    assert_eq!(&got.value, order);
    assert_eq!(got.value["big"], "-9007199254740993");
    assert_eq!(got.value["ratio"], json!(0.1));
    assert_eq!(got.decoded_as.format, "protobuf");
    assert_eq!(got.decoded_as.message.as_deref(), Some("shop.Order"));
    assert_eq!(got.decoded_as.file.as_deref(), Some("order.proto"));
    assert_eq!(got.decoded_as.schema_id, None);
}

#[test]
fn confluent_message_indexes_pick_the_message_type_in_the_file() {
    let v = values();
    let d = decoder();
    let cases: [(&[u8], &str); 3] = [
        (&[0], "shop.Order"),
        (&[2, 2], "shop.Refund"),
        (&[4, 2, 0], "shop.Refund.Reason"),
    ];
    for (indexes, name) in cases {
        let body = framed(indexes, &encode(name, &v[name]));
        // No rule for this topic: the known id is enough.
        let got = d.decode(&input("elsewhere", &body)).unwrap().unwrap();
        assert_eq!(got.value, v[name], "{name}");
        assert_eq!(got.decoded_as.message.as_deref(), Some(name));
        assert_eq!(got.decoded_as.schema_id, Some(7));
        assert_eq!(got.decoded_as.subject.as_deref(), Some("orders-value"));
    }
    let e = d
        .decode(&input("elsewhere", &framed(&[2, 10], b"")))
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "protobuf does not match subject orders-value: message index 5 is not in schema.proto (2 message types there)"
    );
}

#[test]
fn a_framed_body_with_an_unknown_id_on_a_mapped_queue_reads_with_the_local_file() {
    let v = values();
    let mut body = framed(&[2, 2], &encode("shop.Refund", &v["shop.Refund"]));
    body[4] = 99;
    // The rule names Order, but the indexes say Refund: the indexes are the message's own.
    let got = decoder().decode(&input("orders", &body)).unwrap().unwrap();
    assert_eq!(got.value, v["shop.Refund"]);
    assert_eq!(got.decoded_as.schema_id, Some(99));
    assert_eq!(got.decoded_as.file.as_deref(), Some("order.proto"));
}

#[test]
fn registry_texts_compile_with_their_references_in_memory() {
    let main = r#"syntax = "proto3";
        package pay;
        import "common/money.proto";
        message Payment { common.Money amount = 1; }"#;
    let money = r#"syntax = "proto3"; package common;
        message Money { string currency = 1; int64 cents = 2; }"#;
    let refs = [("common/money.proto".to_string(), money.to_string())];
    let s = Schema::protobuf_from_text(main, &refs, Origin::Subject("pay-value".into())).unwrap();
    let SchemaKind::Protobuf(p) = &s.kind else {
        panic!("not protobuf")
    };
    assert_eq!(p.message_names(), ["pay.Payment"]);
    let d = by_ids([(3, s)]);
    // amount { currency "EUR", cents 1250 }
    let body = [
        0, 0, 0, 0, 3, 0, 0x0a, 0x08, 0x0a, 0x03, b'E', b'U', b'R', 0x10, 0xe2, 0x09,
    ];
    let got = d.decode(&input("t", &body)).unwrap().unwrap();
    assert_eq!(
        got.value,
        json!({"amount": {"currency": "EUR", "cents": "1250"}})
    );
    let e = Schema::protobuf_from_text(main, &[], Origin::Subject("pay-value".into()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("common/money.proto"), "{e}");
    let e = Schema::protobuf_from_text("syntax = \"proto3\";\nmessage A { int32 x = 1 }", &[], {
        Origin::Subject("s".into())
    })
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("schema subject s: schema.proto:2:"), "{e}");
}

/// What confluent-kafka's ProtobufSerializer registers: each file as a base64
/// `FileDescriptorProto`, the main one under its own name, references by import name.
#[test]
fn registry_answers_in_serialized_form_compile_like_their_text() {
    use base64::Engine;
    let main = r#"syntax = "proto3";
        package pay;
        import "common/money.proto";
        import "google/protobuf/timestamp.proto";
        message Payment { common.Money amount = 1; google.protobuf.Timestamp at = 2; }"#;
    let money = r#"syntax = "proto3"; package common;
        message Money { string currency = 1; int64 cents = 2; }"#;
    let texts = Texts(vec![
        ("payment.proto".into(), main.into()),
        ("common/money.proto".into(), money.into()),
    ]);
    let mut chain = protox::file::ChainFileResolver::new();
    chain.add(texts);
    chain.add(protox::file::GoogleFileResolver::new());
    let mut c = protox::Compiler::with_file_resolver(chain);
    c.open_file("payment.proto").unwrap();
    let pool = c.descriptor_pool();
    let b64 = |name: &str| {
        let file = pool.get_file_by_name(name).unwrap();
        base64::engine::general_purpose::STANDARD
            .encode(file.file_descriptor_proto().encode_to_vec())
    };
    // Registered under another name than the import's: the import name wins.
    let refs = [("common/money.proto".to_string(), b64("common/money.proto"))];
    let s = Schema::protobuf_from_text(
        &b64("payment.proto"),
        &refs,
        Origin::Subject("pay-value".into()),
    )
    .unwrap();
    let d = by_ids([(3, s)]);
    // amount { currency "EUR", cents 1250 }, at { seconds 1 }
    let body = [
        0, 0, 0, 0, 3, 0, 0x0a, 0x08, 0x0a, 0x03, b'E', b'U', b'R', 0x10, 0xe2, 0x09, 0x12, 0x02,
        0x08, 0x01,
    ];
    let got = d.decode(&input("t", &body)).unwrap().unwrap();
    assert_eq!(
        got.value,
        json!({"amount": {"currency": "EUR", "cents": "1250"}, "at": "1970-01-01T00:00:01Z"})
    );
    // A reference missing is named, as with text.
    let e = Schema::protobuf_from_text(
        &b64("payment.proto"),
        &[],
        Origin::Subject("pay-value".into()),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("common/money.proto"), "{e}");
}

#[test]
fn a_descriptor_set_reads_like_the_proto_it_was_made_from() {
    let set = pool().encode_to_vec();
    let s = Schema::protobuf_descriptor_set(
        &set,
        Some("shop.Order"),
        Origin::File("order.desc".into()),
    )
    .unwrap();
    let d = reading("o", Format::Protobuf, Some(s));
    let order = &values()["shop.Order"];
    let got = d
        .decode(&input("o", &encode("shop.Order", order)))
        .unwrap()
        .unwrap();
    assert_eq!(&got.value, order);
    let e = Schema::protobuf_descriptor_set(b"\x0a\x05junk!", None, Origin::File("x.pb".into()))
        .unwrap_err();
    assert!(
        e.to_string().contains("not a readable descriptor set"),
        "{e}"
    );
    let e = Schema::protobuf(
        pool(),
        "order.proto",
        Some("Nope"),
        Origin::File("f".into()),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "schema f: no message type Nope; the file has shop.Order, shop.Order.Line, shop.Order.Money, shop.Refund, shop.Refund.Reason"
    );
}

#[test]
fn a_protobuf_content_type_needs_a_schema_and_says_so() {
    let mut i = input("unmapped", &[0x08, 0x01]);
    i.content_type = Some("application/x-protobuf");
    let e = Decoder::default().decode(&i).unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "no schema for protobuf: map the queue or topic to a schema file"
    );
}

#[test]
fn bad_protobuf_bodies_say_why_and_never_hang() {
    let d = decoder();
    let reason = |bytes: &[u8]| {
        d.decode(&input("orders", bytes))
            .unwrap()
            .unwrap_err()
            .to_string()
    };
    // Field 2 (int64) whose varint never ends.
    let e = reason(&[0x10, 0xff]);
    assert!(
        e.starts_with("protobuf does not match shop.Order (order.proto): "),
        "{e}"
    );
    assert!(e.contains("invalid varint"), "{e}");
    // Field 2 (int64) sent length-delimited.
    let e = reason(&[0x12, 0x01, 0x00]);
    assert!(e.contains("invalid wire type"), "{e}");
    // A length past the end of the body.
    let e = reason(&[0x0a, 0x05, b'a']);
    assert!(e.contains("buffer underflow"), "{e}");
    // Groups nested a million deep (an unknown field 100): stopped by the nesting limit.
    let deep = [0xa3, 0x06].repeat(500_000);
    let e = reason(&deep);
    assert!(e.contains("recursion limit"), "{e}");
    let big = vec![0x08; 50 << 20];
    assert!(matches!(
        d.decode(&input("orders", &big)).unwrap().unwrap_err(),
        DecodeError::TooLarge { .. }
    ));
}

#[test]
fn a_proto_file_without_a_message_lists_its_types_when_a_bare_body_needs_one() {
    let schema =
        Schema::protobuf(pool(), "order.proto", None, Origin::File("o.proto".into())).unwrap();
    let d = reading("q", Format::Protobuf, Some(schema));
    let e = d.decode(&input("q", &[0x08, 0x01])).unwrap().unwrap_err();
    assert!(
        e.to_string()
            .contains("name one with message = \"...\" (shop.Order, shop.Order.Line"),
        "{e}"
    );
}

#[test]
fn the_format_follows_the_schema_file_when_the_rule_names_none() {
    assert_eq!(Format::of_schema_file("a/b.proto"), Format::Protobuf);
    assert_eq!(Format::of_schema_file("b.binpb"), Format::Protobuf);
    assert_eq!(Format::of_schema_file("b.avsc"), Format::Avro);
    let f: Format = serde_json::from_value(json!("proto")).unwrap();
    assert_eq!(f, Format::Protobuf);
    assert_eq!(
        Format::from_content_type("application/x-protobuf; messageType=x"),
        Some(Format::Protobuf)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes, bare or behind a Confluent header: a value or a reason, never a panic.
    #[test]
    fn any_bytes_read_as_protobuf_decode_or_say_why(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        queue in prop::sample::select(vec!["orders", "refunds", "elsewhere"]),
        framed_with in prop::option::of(proptest::collection::vec(any::<u8>(), 0..4)),
    ) {
        let d = decoder();
        let body = match framed_with {
            Some(indexes) => framed(&indexes, &bytes),
            None => bytes,
        };
        if let Some(Err(e)) = d.decode(&input(queue, &body)) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Orders made of random values, encoded by prost-reflect, read back as the JSON the
    /// mapping gives those values.
    #[test]
    fn generated_orders_read_back_as_their_values(
        id in ".{0,12}",
        big in any::<i64>(),
        huge in any::<u64>(),
        delta in any::<i32>(),
        price in -1e9f64..1e9,
        state in 0i32..3,
        tags in proptest::collection::vec("[a-z]{0,5}", 0..4),
        attrs in proptest::collection::btree_map("[a-z]{1,4}", any::<i64>(), 0..4),
        packed in proptest::collection::vec(any::<i32>(), 0..6),
        blob in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let desc = pool().get_message_by_name("shop.Order").unwrap();
        let mut m = DynamicMessage::new(desc);
        m.set_field_by_name("id", Pv::String(id.clone()));
        m.set_field_by_name("big", Pv::I64(big));
        m.set_field_by_name("huge", Pv::U64(huge));
        m.set_field_by_name("delta", Pv::I32(delta));
        m.set_field_by_name("price", Pv::F64(price));
        m.set_field_by_name("state", Pv::EnumNumber(state));
        m.set_field_by_name("tags", Pv::List(tags.iter().cloned().map(Pv::String).collect()));
        m.set_field_by_name("attrs", Pv::Map(attrs.iter().map(|(k, v)| (MapKey::String(k.clone()), Pv::I64(*v))).collect()));
        m.set_field_by_name("packed", Pv::List(packed.iter().copied().map(Pv::I32).collect()));
        m.set_field_by_name("blob", Pv::Bytes(blob.clone().into()));
        let body = m.encode_to_vec();
        let got = decoder().decode(&input("orders", &body)).unwrap().unwrap().value;

        // What the mapping says those values read as: fields at their default left out.
        let mut want = serde_json::Map::new();
        let names = ["STATE_UNKNOWN", "STATE_PAID", "STATE_SHIPPED"];
        let mut put = |k: &str, v: Value, default: bool| {
            if !default {
                want.insert(k.into(), v);
            }
        };
        put("id", json!(id), id.is_empty());
        put("big", json!(big.to_string()), big == 0);
        put("huge", json!(huge.to_string()), huge == 0);
        put("delta", json!(delta), delta == 0);
        put("price", json!(price), price == 0.0);
        use base64::Engine;
        put("blob", json!(base64::engine::general_purpose::STANDARD.encode(&blob)), blob.is_empty());
        put("state", json!(names[state as usize]), state == 0);
        put("tags", json!(tags), tags.is_empty());
        let attrs_json: serde_json::Map<String, Value> =
            attrs.iter().map(|(k, v)| (k.clone(), json!(v.to_string()))).collect();
        put("attrs", Value::Object(attrs_json), attrs.is_empty());
        put("packed", json!(packed), packed.is_empty());
        prop_assert_eq!(got, Value::Object(want));
    }
}

#[test]
fn a_schema_of_the_other_format_says_so() {
    let d = reading("q", Format::Protobuf, Some(avro_long()));
    let e = d.decode(&input("q", &[0x08, 0x01])).unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "schema n.avsc: it is avro, and the body was taken for protobuf"
    );
}
