#!/usr/bin/env bash
# Avro export benchmark (issue "Read what is inside"): `mqscope peek T --all --json` over N
# Confluent-framed Avro records, decoding each through a schema registry, side by side
# with what users script today: a Python confluent-kafka consumer with AvroDeserializer
# writing JSON Lines. Both read the same librdkafka mock cluster (3 brokers on loopback,
# examples/kafka_mock.rs) and write to /dev/null; wall time and peak memory (GNU time).
# Also mqscope's same export without a registry (no decoding), for the cost of decoding,
# and how many schema requests each mqscope run made.
# The registry is tests/registry/standin.py (no Schema Registry server installs here).
# Usage: benches/avro_peek.sh [records] [partitions] [runs]   (needs scripts/test's
# confluent-venv, or MQSCOPE_PYTHON_CONFLUENT). The mock keeps at most 5 MiB per partition.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
P=${2:-64}
RUNS=${3:-3}
PY=${MQSCOPE_PYTHON_CONFLUENT:-target/tools/confluent-venv/bin/python}
[ -x "$PY" ] || { echo "no confluent-kafka Python: run scripts/test once, or set MQSCOPE_PYTHON_CONFLUENT" >&2; exit 1; }
# PROFILE=debug tries the script quickly on debug builds (its figures mean nothing).
PROFILE=${PROFILE:-release}
flag=(--release); [ "$PROFILE" = debug ] && flag=()
cargo build "${flag[@]}" -q --example kafka_mock
cargo build "${flag[@]}" -q
BIN=target/$PROFILE/mqscope
work=$(mktemp -d)
"$PY" tests/registry/standin.py >"$work/registry" &
registry=$!
mkfifo "$work/stdin"
target/$PROFILE/examples/kafka_mock avro "$P" 0 <"$work/stdin" >"$work/servers" 2>"$work/seed.log" &
mock=$!
exec 3>"$work/stdin"   # holding the fifo open keeps the mock serving
trap 'exec 3>&-; kill $registry 2>/dev/null; wait $mock 2>/dev/null; rm -rf "$work"' EXIT
while [ ! -s "$work/servers" ] || [ ! -s "$work/registry" ]; do
  sleep 0.5
  kill -0 $mock 2>/dev/null || { cat "$work/seed.log"; exit 1; }
done
servers=$(head -1 "$work/servers")
reg="http://127.0.0.1:$(head -1 "$work/registry")"
s=$(date +%s.%N)
"$PY" benches/avro_peek.py produce "$servers" "$reg" avro "$N" tests/decode_interop/order.avsc
e=$(date +%s.%N)
python3 -c "print(f'produced $N records with AvroSerializer in {$e - $s:.1f} s')"
measure() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
requests() { curl -fsS "$reg/_counts" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(" + ".join(f"{v}x {k}" for k,v in sorted(c.items())) or "none")'; }
for run in $(seq 1 "$RUNS"); do
  curl -fsS -X POST "$reg/_reset_counts" >/dev/null
  read -r mt mm < <(measure env MQSCOPE_SCHEMA_REGISTRY="$reg" $BIN peek avro --all --json --url "kafka://$servers")
  asked=$(requests)
  read -r rt rm < <(measure env -u MQSCOPE_SCHEMA_REGISTRY $BIN peek avro --all --json --url "kafka://$servers")
  read -r pt pm < <(measure "$PY" benches/avro_peek.py consume "$servers" "$reg" avro "$N")
  python3 -c "print(f'run $run: mqscope decoded {$mt:.2f} s ({$N/$mt:,.0f}/s, peak {$mm/1024:.0f} MB, registry asked: $asked); without decoding {$rt:.2f} s ({$N/$rt:,.0f}/s, peak {$rm/1024:.0f} MB; decoding costs {$mt/$rt:.2f}x); Python AvroDeserializer {$pt:.2f} s ({$N/$pt:,.0f}/s, peak {$pm/1024:.0f} MB); ratio Python/mqscope {$pt/$mt:.2f}')"
done
# The decoded records are what Python reads (a check of the run, not timed).
MQSCOPE_SCHEMA_REGISTRY=$reg $BIN peek avro --all --json --url "kafka://$servers" | head -3 |
  python3 -c 'import json,sys; rows=[json.loads(l) for l in sys.stdin]; assert all("decoded" in r for r in rows), rows; print("decoded, e.g.:", json.dumps(rows[0]["decoded"])[:160])'
