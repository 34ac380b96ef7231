"""Writes the messages of order_pb.json with Python's protobuf (its own encoder, not
mqscope's), for tests/decode_interop.rs. argv: a FileDescriptorSet of order.proto with its
imports, order_pb.json. Prints one line per message: name, the bare bytes in hex, the
Confluent-framed bytes (schema id 7 and the message-index path) in hex, and what
json_format.MessageToDict(preserving_proto_field_name=True) makes of the message."""

import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

# Confluent message-index paths of the types in order.proto.
INDEXES = {"shop.Order": [0], "shop.Refund": [1], "shop.Refund.Reason": [1, 0]}


def zigzag(n):
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def framed(name, body):
    path = INDEXES[name]
    head = b"\x00" + (7).to_bytes(4, "big")
    if path == [0]:
        head += b"\x00"
    else:
        head += zigzag(len(path)) + b"".join(zigzag(i) for i in path)
    return head + body


fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], "rb").read())
pool = descriptor_pool.DescriptorPool()
for f in fds.file:
    pool.Add(f)
values = json.load(open(sys.argv[2]))
for name, value in values.items():
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
    msg = json_format.ParseDict(value, cls())
    body = msg.SerializeToString()
    shown = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    print(name, body.hex(), framed(name, body).hex(), json.dumps(shown), sep="\t")
