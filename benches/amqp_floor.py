#!/usr/bin/env python3
"""The broker's floor for a peek: how long RabbitMQ needs to hand N messages to one consumer.

A bare AMQP 0-9-1 client on a socket (handshake by hand, prefetch N, manual ack) that only
counts basic.deliver frames, then cancels and returns every message with one
basic.nack(multiple, requeue) and closes the channel, as mqscope's peek does. It converts
nothing and writes nothing, so what it measures is the broker's delivery plus round trips.
Times are taken inside the script (the interpreter's start is left out) and printed as
"setup S recv R close C total T" in seconds.
Usage: benches/amqp_floor.py QUEUE N   (guest/guest on 127.0.0.1:5672, vhost /)
"""
import socket
import struct
import sys
import time

queue, want = sys.argv[1].encode(), int(sys.argv[2])
DELIVER = struct.pack(">HH", 60, 60)
CLOSE_OK = struct.pack(">HH", 20, 41)

t0 = time.perf_counter()
sock = socket.create_connection(("127.0.0.1", 5672))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buf = bytearray()


def fill():
    data = sock.recv(1 << 22)
    if not data:
        sys.exit("the broker closed the connection")
    buf.extend(data)


def frame():
    """The next whole frame: (type, channel, payload)."""
    while True:
        if len(buf) >= 7:
            kind, ch, size = struct.unpack_from(">BHI", buf)
            if len(buf) >= 8 + size:
                payload = bytes(buf[7:7 + size])
                del buf[:8 + size]
                return kind, ch, payload
        fill()


def method(ch, cls, mid, args=b""):
    payload = struct.pack(">HH", cls, mid) + args
    sock.sendall(struct.pack(">BHI", 1, ch, len(payload)) + payload + b"\xce")


def short(b):
    return bytes([len(b)]) + b


def long(b):
    return struct.pack(">I", len(b)) + b


sock.sendall(b"AMQP\x00\x00\x09\x01")
frame()  # connection.start
method(0, 10, 11, long(b"") + short(b"PLAIN") + long(b"\x00guest\x00guest") + short(b"en_US"))
_, _, tune = frame()
channel_max, frame_max, _ = struct.unpack(">HIH", tune[4:12])
method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0))  # tune-ok, no heartbeat
method(0, 10, 40, short(b"/") + short(b"") + b"\x00")
frame()  # open-ok
method(1, 20, 10, short(b""))
frame()  # channel.open-ok
method(1, 60, 10, struct.pack(">IHB", 0, min(want, 65535), 0))
frame()  # qos-ok
method(1, 60, 20, struct.pack(">H", 0) + short(queue) + short(b"floor") + b"\x00" + long(b""))
t1 = time.perf_counter()

# Count deliveries by walking every whole frame in the buffer; keep the last delivery tag.
got, last_tag = 0, 0
while True:
    off = 0
    while off + 7 <= len(buf):
        kind, _, size = struct.unpack_from(">BHI", buf, off)
        if off + 8 + size > len(buf):
            break
        if kind == 1 and buf[off + 7:off + 11] == DELIVER:
            got += 1
            tag_len = buf[off + 11]
            last_tag = struct.unpack_from(">Q", buf, off + 12 + tag_len)[0]
        off += 8 + size
    del buf[:off]
    if got >= want:
        break
    fill()
t2 = time.perf_counter()

method(1, 60, 30, short(b"floor") + b"\x00")  # cancel
method(1, 60, 120, struct.pack(">QB", last_tag, 3))  # nack multiple + requeue
method(1, 20, 40, struct.pack(">H", 200) + short(b"done") + struct.pack(">HH", 0, 0))
while True:
    kind, _, payload = frame()
    if kind == 1 and payload[:4] == CLOSE_OK:
        break
t3 = time.perf_counter()
sock.close()
print(f"setup {t1 - t0:.3f} recv {t2 - t1:.3f} close {t3 - t2:.3f} total {t3 - t0:.3f} got {got}")
