"""Write Avro datums with fastavro for tests/decode_interop.rs: the schema file given as
the first argument, one record with every type, written bare and in the Confluent wire
format (magic byte 0, schema id 42), printed as two lines of hex."""
import datetime
import decimal
import io
import json
import sys
import uuid

import fastavro

schema = fastavro.parse_schema(json.load(open(sys.argv[1])))
utc = datetime.timezone.utc
record = {
    "nothing": None,
    "paid": True,
    "qty": -3,
    "id": 9007199254740993,
    "ratio": 0.25,
    "price": 19.99,
    "blob": b"\xff\xad",
    "name": "Zo\u00eb",
    "state": "PAID",
    "hash": b"ok",
    "tags": ["a", "b"],
    "attrs": {"z": 1, "a": 2},
    "note": "fragile",
    "amount": decimal.Decimal("123.45"),
    "fee": decimal.Decimal("-0.005"),
    "ref": uuid.UUID("6f1b0c9e-3a52-4e6e-9d0e-1f2a3b4c5d6e"),
    "day": datetime.date(2022, 1, 8),
    "at_ms": datetime.time(1, 2, 3, 4000),
    "at_us": datetime.time(1, 2, 3, 4005),
    "ts_ms": datetime.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=utc),
    "ts_us": datetime.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=utc),
    "local_ms": datetime.datetime(2023, 11, 14, 22, 13, 20),
    "again": b"\xff\xfe",
}
out = io.BytesIO()
fastavro.schemaless_writer(out, schema, record)
bare = out.getvalue()
print(bare.hex())
print((b"\x00" + (42).to_bytes(4, "big") + bare).hex())
