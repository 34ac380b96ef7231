#!/usr/bin/env bash
# Kafka export benchmark: `mqscope peek T --all --json` against `kcat -C -e -J -t T`, side by
# side on the same librdkafka mock cluster (3 brokers on loopback, see
# examples/kafka_mock.rs), both writing to /dev/null. Wall time and peak memory (GNU time).
# Usage: benches/kafka_export.sh [messages] [partitions] [runs]
# The mock keeps at most 5 MiB per partition: 1,000,000 ~200-byte messages need 48.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
P=${2:-48}
RUNS=${3:-3}
command -v kcat >/dev/null || { echo "kcat is needed (Debian package kcat)" >&2; exit 1; }
cargo build --release -q --example kafka_mock
cargo build --release -q
work=$(mktemp -d)
mkfifo "$work/stdin"
target/release/examples/kafka_mock bench "$P" "$N" <"$work/stdin" >"$work/servers" 2>"$work/seed.log" &
mock=$!
exec 3>"$work/stdin"   # holding the fifo open keeps the mock serving
trap 'exec 3>&-; wait $mock 2>/dev/null; rm -rf "$work"' EXIT
while [ ! -s "$work/servers" ]; do sleep 0.5; kill -0 $mock 2>/dev/null || { cat "$work/seed.log"; exit 1; }; done
servers=$(head -1 "$work/servers")
cat "$work/seed.log"
first=${servers%%,*}
measure() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
for run in $(seq 1 "$RUNS"); do
  read -r mt mm < <(measure target/release/mqscope peek bench --all --json --url "kafka://$servers")
  read -r kt km < <(measure kcat -b "$first" -C -e -J -q -t bench)
  count=$(target/release/mqscope peek bench --all --json --url "kafka://$servers" | wc -l)
  python3 -c "print(f'run $run: mqscope {$mt:.2f} s ({$count} messages, {$count/$mt:,.0f}/s, peak {$mm/1024:.0f} MB), kcat {$kt:.2f} s ({$N/$kt:,.0f}/s, peak {$km/1024:.0f} MB), ratio kcat/mqscope {$kt/$mt:.2f}')"
done
