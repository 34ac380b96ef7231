#!/usr/bin/env bash
# Kafka trace benchmark: `mqscope trace ID --json` against what people do today,
# `kcat -C -e -t T -f '%h\n' | grep -c ID` (or '%s\n' for an ID in the body), side by side
# on the same librdkafka mock cluster (3 brokers on loopback, see examples/kafka_mock.rs).
# One topic of N ~200-byte JSON messages in P partitions; the ID sought is the record in
# the middle, once with IDs in an `x-correlation-id` header and once in the JSON body
# (`correlationId`). Wall time and peak memory from GNU time.
# Usage: benches/kafka_trace.sh [messages] [partitions] [runs]
# The mock keeps at most 5 MiB per partition and drops the oldest beyond: 1,000,000 of these
# messages (~250 bytes with key and headers) need 56 partitions to be kept whole (50 lost a few hundred).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
P=${2:-56}
RUNS=${3:-3}
command -v kcat >/dev/null || { echo "kcat is needed (Debian package kcat)" >&2; exit 1; }
cargo build --release -q --example kafka_mock
cargo build --release -q
measure() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
ID=$(printf 'ord-%08d' $((N / 2)))
for where in header body; do
  work=$(mktemp -d)
  mkfifo "$work/stdin"
  target/release/examples/kafka_mock bench "$P" "$N" "$where" <"$work/stdin" >"$work/servers" 2>"$work/seed.log" &
  mock=$!
  exec 3>"$work/stdin"   # holding the fifo open keeps the mock serving
  while [ ! -s "$work/servers" ]; do sleep 0.5; kill -0 $mock 2>/dev/null || { cat "$work/seed.log"; exit 1; }; done
  servers=$(head -1 "$work/servers")
  first=${servers%%,*}
  echo "ID in the $where: $(cat "$work/seed.log")"
  if [ "$where" = header ]; then fmt='%h\n'; else fmt='%s\n'; fi
  for run in $(seq 1 "$RUNS"); do
    read -r mt mm < <(measure target/release/mqscope trace "$ID" --json --url "kafka://$servers")
    read -r kt km < <(measure bash -c "kcat -b $first -C -e -q -t bench -f '$fmt' | grep -c $ID")
    trace=$(target/release/mqscope trace "$ID" --json --url "kafka://$servers")
    found=$(kcat -b "$first" -C -e -q -t bench -f "$fmt" | grep -c "$ID" || true)
    python3 - "$trace" "$found" <<PY
import json, sys
t = json.loads(sys.argv[1]); found = int(sys.argv[2])
mt, mm, kt, km = $mt, $mm, $kt, $km
assert len(t["hops"]) == 1 == found, (t["hops"], found)
print(f"  run $run: mqscope {mt:.2f} s ({t['scanned']:,} scanned, {t['scanned']/mt:,.0f}/s, peak {mm/1024:.0f} MB, {len(t['hops'])} hop), "
      f"kcat | grep {kt:.2f} s ({$N/kt:,.0f}/s, peak {km/1024:.0f} MB, {found} line), ratio kcat/mqscope {kt/mt:.2f}")
PY
  done
  exec 3>&-
  wait $mock 2>/dev/null || true
  rm -rf "$work"
done
