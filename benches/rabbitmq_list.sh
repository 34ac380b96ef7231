#!/usr/bin/env bash
# Listing benchmark: `mqscope queues --json` against `rabbitmqadmin list queues` asked for
# the same columns (depth, consumers, arguments, policy, rates), side by side on a vhost of
# N queues (one in ten dead-letters through an argument, the rest of a tenth through a
# policy, into one dead-letter queue). mqscope also reads the vhost's exchanges and
# bindings to resolve each queue's dead-letter queue; rabbitmqadmin does not.
#
# Every timed command starts after a one-second pause, and the two take turns going first.
# Usage: benches/rabbitmq_list.sh [rounds] [sizes...]   (default: 5 rounds, 5000 20000)
# Needs RabbitMQ with management on 127.0.0.1, guest/guest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
shift || true
SIZES=${*:-5000 20000}
API="http://127.0.0.1:15672"
BIN=target/release/mqscope
work=$(mktemp -d)
VHOSTS=()
cleanup() {
  for v in "${VHOSTS[@]}"; do curl -s -u guest:guest -X DELETE "$API/api/vhosts/$v" >/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
[ -x "$BIN" ] || cargo build --release -q
curl -fsS -u guest:guest -o "$work/rabbitmqadmin" "$API/cli/rabbitmqadmin"
echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
t() { local s e; sleep 1; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.3f}')"; }
for n in $SIZES; do
  v="mqscope-bench-list-$$-$n"
  VHOSTS+=("$v")
  curl -fsS -u guest:guest -X PUT "$API/api/vhosts/$v"
  curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' \
    -d '{"configure":".*","write":".*","read":".*"}' "$API/api/permissions/$v/guest"
  python3 - "$work/defs.json" "$n" "$v" <<'PY'
import json, sys
path, n, v = sys.argv[1], int(sys.argv[2]), sys.argv[3]
args = lambda i: {"x-dead-letter-exchange": "dlx"} if i % 10 == 0 else {}
queues = [{"name": f"q{i:06d}", "vhost": v, "durable": True, "auto_delete": False,
           "arguments": args(i)} for i in range(n)]
queues.append({"name": "dl", "vhost": v, "durable": True, "auto_delete": False, "arguments": {}})
json.dump({"queues": queues,
           "exchanges": [{"name": "dlx", "vhost": v, "type": "fanout", "durable": True,
                          "auto_delete": False, "internal": False, "arguments": {}}],
           "bindings": [{"source": "dlx", "vhost": v, "destination": "dl",
                         "destination_type": "queue", "routing_key": "", "arguments": {}}],
           "policies": [{"vhost": v, "name": "dl", "pattern": "^q0001", "apply-to": "queues",
                         "definition": {"dead-letter-exchange": "dlx"}, "priority": 0}]},
          open(path, "w"))
PY
  curl -fsS -u guest:guest -X POST -H 'content-type: application/json' \
    -d @"$work/defs.json" "$API/api/definitions/$v" --max-time 600
  url="amqp://guest:guest@127.0.0.1:5672/$v"
  lines=$("$BIN" queues --json --url "$url" | wc -l)
  echo "vhost $v: mqscope lists $lines queues"
  mq() { t "$BIN" queues --json --url "$url"; }
  admin() {
    t python3 "$work/rabbitmqadmin" -u guest -p guest -V "$v" -f raw_json list queues \
      name vhost type messages messages_ready messages_unacknowledged consumers arguments \
      policy effective_policy_definition message_stats.publish_details.rate \
      message_stats.deliver_get_details.rate message_stats.ack_details.rate
  }
  : >"$work/rounds"
  for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then m=$(mq); r=$(admin); else r=$(admin); m=$(mq); fi
    echo "$m $r" >>"$work/rounds"
    echo "  round $round: mqscope $m s, rabbitmqadmin $r s"
  done
  python3 - "$work/rounds" "$n" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
m, r = (statistics.median(c) for c in zip(*rows))
print(f"{sys.argv[2]} queues: median mqscope {m:.3f} s, rabbitmqadmin {r:.3f} s, "
      f"rabbitmqadmin / mqscope {r/m:.2f}")
PY
done
