"""Produce records the way users' programs do, for tests/registry_interop.rs: Python
confluent-kafka's AvroSerializer, ProtobufSerializer and JSONSerializer with its
SchemaRegistryClient (against the stand-in registry, tests/registry/standin.py), into a
Kafka broker.

    produce.py BOOTSTRAP REGISTRY_URL TOPIC_PREFIX ORDER_AVSC PAYMENT_DESC [create]

PAYMENT_DESC: a FileDescriptorSet of tests/registry/proto/payment.proto with its imports
(there is no protoc here: the test compiles it with protox); the message classes are made
from it at run time.

Topics (created by the caller, or here with CreateTopics when "create" is given: the
librdkafka mock cluster does not answer it): PREFIX-orders (the record with every Avro type, twice
with schema v1, then once with v2, which adds a defaulted field), PREFIX-invoices (an Avro
schema referencing another subject's named type), PREFIX-events (JSON Schema) and
PREFIX-payments (Protobuf: shop.pay.Payment, shop.pay.Refund and shop.pay.Payment.Line,
message indexes [0], [1] and [0, 0], with shop/money.proto registered as a reference).

Prints one JSON line per record: topic, partition, offset, and "value": what the same
library's deserializers (AvroDeserializer, JSONDeserializer, given only the registry;
ProtobufDeserializer, given the message class and the registry, its output as
json_format.MessageToDict(preserving_proto_field_name=True) writes it) make of the produced
bytes, written in mqscope's conventions for what JSON has no type for:
decimals as their digits, UUIDs, dates, times and timestamps as ISO 8601 text (UTC with a
Z, the fraction in as many digits of 3 as it needs), bytes as text when UTF-8, else
{"base64": ...}. Only the notation is converted; every value is the deserializer's.
"""
import base64
import datetime
import decimal
import json
import os
import sys
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "decode_interop"))
from order_record import record  # noqa: E402

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory  # noqa: E402

bootstrap, registry_url, prefix, avsc, payment_desc = sys.argv[1:6]
client = SchemaRegistryClient({"url": registry_url})
producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10000})
utc = datetime.timezone.utc
if sys.argv[6:7] == ["create"]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [f"{prefix}-{t}" for t in ("orders", "invoices", "events", "payments")]
    for f in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        f.result(20)


def fraction(micros):
    if micros == 0:
        return ""
    if micros % 1000 == 0:
        return f".{micros // 1000:03d}"
    return f".{micros:06d}"


def readable(v):
    if isinstance(v, dict):
        return {k: readable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [readable(x) for x in v]
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, datetime.datetime):
        zone = ""
        if v.tzinfo is not None:
            v = v.astimezone(utc).replace(tzinfo=None)
            zone = "Z"
        return v.strftime("%Y-%m-%dT%H:%M:%S") + fraction(v.microsecond) + zone
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, datetime.time):
        return v.strftime("%H:%M:%S") + fraction(v.microsecond)
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(bytes(v)).decode()}
    return v


def produce(topic, serializer, deserializer, value, key=None):
    """`key`: (serializer, deserializer, value) for a key written under `<topic>-key`."""
    ctx = SerializationContext(topic, MessageField.VALUE)
    data = serializer(value, ctx)
    key_ctx = SerializationContext(topic, MessageField.KEY)
    key_data = key[0](key[2], key_ctx) if key else None
    delivered = []
    producer.produce(
        topic, key=key_data, value=data, on_delivery=lambda err, msg: delivered.append((err, msg))
    )
    # One at a time: tansu's high watermark lags a batched produce.
    producer.flush(15)
    err, msg = delivered[0]
    if err is not None:
        raise SystemExit(f"produce to {topic} failed: {err}")
    back = deserializer(msg.value(), ctx)
    line = {
        "topic": topic,
        "partition": msg.partition(),
        "offset": msg.offset(),
        "value": readable(back),
    }
    if key:
        line["key"] = readable(key[1](msg.key(), key_ctx))
    print(json.dumps(line), flush=True)


order_v1 = open(avsc).read()
v2 = json.loads(order_v1)
v2["fields"].append({"name": "channel", "type": "string", "default": "web"})
order_v2 = json.dumps(v2)
avro_out = AvroDeserializer(client)
orders = f"{prefix}-orders"
v1_ser = AvroSerializer(client, order_v1)
order_key = '{"type": "record", "name": "OrderKey", "namespace": "shop", "fields": [{"name": "id", "type": "long"}, {"name": "shard", "type": {"type": "int", "logicalType": "date"}}]}'
key = (AvroSerializer(client, order_key), avro_out, {"id": 77, "shard": datetime.date(2024, 2, 29)})
produce(orders, v1_ser, avro_out, record, key)
second = dict(record, qty=7, note=None, fee=None, again=None, tags=[], attrs={}, state="NEW")
produce(orders, v1_ser, avro_out, second)
produce(orders, AvroSerializer(client, order_v2), avro_out, dict(record, channel="shop"))

# A schema referencing a named type registered under another subject.
money = json.dumps(
    {
        "type": "record",
        "name": "Money",
        "namespace": "shop.common",
        "fields": [
            {"name": "units", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
            {"name": "currency", "type": {"type": "enum", "name": "Currency", "symbols": ["EUR", "USD"]}},
        ],
    }
)
client.register_schema(f"{prefix}-money", Schema(money, "AVRO"))
invoice = json.dumps(
    {
        "type": "record",
        "name": "Invoice",
        "namespace": "shop",
        "fields": [
            {"name": "number", "type": "string"},
            {"name": "total", "type": "shop.common.Money"},
            {"name": "refund", "type": ["null", "shop.common.Money"], "default": None},
        ],
    }
)
invoice_schema = Schema(
    invoice, "AVRO", [SchemaReference("shop.common.Money", f"{prefix}-money", 1)]
)
invoices = f"{prefix}-invoices"
inv_ser = AvroSerializer(client, invoice_schema)
produce(
    invoices,
    inv_ser,
    avro_out,
    {"number": "INV-1", "total": {"units": decimal.Decimal("250.00"), "currency": "EUR"}, "refund": None},
)
produce(
    invoices,
    inv_ser,
    avro_out,
    {
        "number": "INV-2",
        "total": {"units": decimal.Decimal("-0.01"), "currency": "USD"},
        "refund": {"units": decimal.Decimal("9.99"), "currency": "USD"},
    },
)

event_schema = json.dumps(
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Event",
        "type": "object",
        "properties": {
            "kind": {"type": "string"},
            "n": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "at": {"type": ["string", "null"]},
        },
        "required": ["kind", "n"],
    }
)
events = f"{prefix}-events"
json_ser = JSONSerializer(event_schema, client)
json_out = JSONDeserializer(None, schema_registry_client=client)
produce(events, json_ser, json_out, {"kind": "created", "n": 1, "tags": ["x", "ü"], "at": None})
produce(events, json_ser, json_out, {"kind": "paid", "n": 2, "tags": []})

# Protobuf: the message classes made from the descriptor set, as generated code would be.
fds = descriptor_pb2.FileDescriptorSet.FromString(open(payment_desc, "rb").read())
pool = descriptor_pool.DescriptorPool()
for f in fds.file:
    pool.Add(f)


def pb_class(name):
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def pb_pair(name):
    cls = pb_class(name)
    ser = ProtobufSerializer(cls, client, {"use.deprecated.format": False})
    de = ProtobufDeserializer(cls, {"use.deprecated.format": False}, schema_registry_client=client)

    def read(data, ctx):
        return json_format.MessageToDict(de(data, ctx), preserving_proto_field_name=True)

    return cls, ser, read


payments = f"{prefix}-payments"
Payment, pay_ser, pay_out = pb_pair("shop.pay.Payment")
payment = json_format.ParseDict(
    {
        "id": "pay-1",
        "big": "-9007199254740993",
        "total": {"currency": "EUR", "units": "-12", "nanos": -500000000},
        "lines": [
            {"sku": "A-1", "qty": 2, "price": {"currency": "EUR", "units": "3"}},
            {"sku": "B-ü", "qty": 0},
        ],
        "attrs": {"channel": "shop", "": "empty key"},
        "method": "METHOD_CASH",
        "cash": {"currency": "EUR", "units": "20"},
        "at": "2024-02-29T23:59:59.123456789Z",
        "blob": base64.b64encode(bytes([0, 159, 255])).decode(),
        "tip": 0,
    },
    Payment(),
)
produce(payments, pay_ser, pay_out, payment)
produce(payments, pay_ser, pay_out, Payment(id="pay-2", card="4111-xx", method=1))
Refund, refund_ser, refund_out = pb_pair("shop.pay.Refund")
refund = json_format.ParseDict(
    {"payment_id": "pay-1", "amount": {"currency": "USD", "units": "1"}, "reason": "late"}, Refund()
)
produce(payments, refund_ser, refund_out, refund)
Line, line_ser, line_out = pb_pair("shop.pay.Payment.Line")
produce(payments, line_ser, line_out, Line(sku="C-3", qty=4294967295))
