#!/usr/bin/env python3
"""Startup benchmark: time from exec to mqscope's first frame, and to the first frame that
shows the demo's queues, measured from outside through a pseudo-terminal (120x40).

Usage: benches/startup.py [path/to/mqscope] [runs]
       benches/startup.py --peer htop [runs]   (the same measurement of htop's first frame)
"""
import fcntl, os, pty, select, statistics, struct, sys, termios, time

PEER = len(sys.argv) > 2 and sys.argv[1] == "--peer"
if PEER:
    sys.argv.pop(1)
BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/mqscope"
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 15
# What marks the first frame, and the first frame with data.
FIRST, LOADED = (b"Tasks:", b"Load average") if PEER else (b"Queues", b"billing.dlq")
ARGS = [BIN] if PEER else [BIN, "demo"]


def one_run():
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["XDG_CONFIG_HOME"] = "/nonexistent-mqscope-bench"
        os.execvp(BIN, ARGS)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    start = time.monotonic()
    seen, first, loaded = b"", None, None
    while loaded is None and time.monotonic() - start < 10:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            seen += chunk
            now = time.monotonic() - start
            if first is None and FIRST in seen:
                first = now
            if LOADED in seen:
                loaded = now
    os.write(fd, b"q")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        try:
            select.select([fd], [], [], 0.05) and os.read(fd, 65536)
        except OSError:
            pass
    else:
        os.kill(pid, 9)
    os.close(fd)
    return first, loaded


firsts, loads = [], []
for _ in range(RUNS):
    f, l = one_run()
    if f is not None:
        firsts.append(f * 1000)
    if l is not None:
        loads.append(l * 1000)
print(f"{' '.join(ARGS)}, {RUNS} runs in a 120x40 pty:")
print(f"  first frame:             median {statistics.median(firsts):.1f} ms  max {max(firsts):.1f} ms")
print(f"  first frame with data:   median {statistics.median(loads):.1f} ms  max {max(loads):.1f} ms")
