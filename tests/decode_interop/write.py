"""Write Avro datums with fastavro for tests/decode_interop.rs: the schema file given as
the first argument, one record with every type, written bare and in the Confluent wire
format (magic byte 0, schema id 42), printed as two lines of hex."""
import io
import json
import os
import sys

import fastavro

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from order_record import record  # noqa: E402

schema = fastavro.parse_schema(json.load(open(sys.argv[1])))
out = io.BytesIO()
fastavro.schemaless_writer(out, schema, record)
bare = out.getvalue()
print(bare.hex())
print((b"\x00" + (42).to_bytes(4, "big") + bare).hex())
