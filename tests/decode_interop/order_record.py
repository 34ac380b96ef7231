"""The record with every Avro type (tests/decode_interop/order.avsc), as Python writes it:
shared by write.py (fastavro) and tests/registry/produce.py (confluent-kafka); what it
reads as is order.json."""
import datetime
import decimal
import uuid

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
