"""The Python side of benches/avro_peek.sh: what users script today with confluent-kafka.

    avro_peek.py produce BOOTSTRAP REGISTRY_URL TOPIC N AVSC
        N records of the every-type Order (tests/decode_interop/order.avsc), each its own
        (id, qty, name, tags vary), written by AvroSerializer, which registers the schema.
    avro_peek.py consume BOOTSTRAP REGISTRY_URL TOPIC N
        A consumer with AvroDeserializer reading the topic from the start until it has N
        records, writing each value as a JSON line (str() for what JSON has no type for)
        to stdout: the export a script makes.
"""
import json
import os
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "decode_interop"))
from order_record import record  # noqa: E402

mode, bootstrap, registry_url, topic, n = sys.argv[1:6]
n = int(n)
client = SchemaRegistryClient({"url": registry_url})
ctx = SerializationContext(topic, MessageField.VALUE)

if mode == "produce":
    serializer = AvroSerializer(client, open(sys.argv[6]).read())
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "queue.buffering.max.messages": 1000000,
            "message.timeout.ms": 60000,
        }
    )
    for i in range(n):
        value = dict(record, id=i, qty=i % 100, name=f"Zoë {i}", tags=[f"t{i % 7}", "b"])
        while True:
            try:
                producer.produce(topic, value=serializer(value, ctx))
                break
            except BufferError:
                producer.poll(0.1)
        if i % 10000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    if left:
        raise SystemExit(f"{left} records not delivered")
else:
    deserializer = AvroDeserializer(client)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{os.getpid()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out = sys.stdout
    seen = 0
    while seen < n:
        for msg in consumer.consume(1000, 1.0):
            if msg.error():
                continue
            value = deserializer(msg.value(), ctx)
            out.write(json.dumps(value, default=str) + "\n")
            seen += 1
    consumer.close()
