#!/usr/bin/env bash
# Peek benchmark: `mqscope peek Q -n 10000 --json` against `rabbitmqadmin get ...
# ackmode=ack_requeue_true` (the management API's get), side by side on the same classic
# queue of 10,000 ~200-byte messages on a local RabbitMQ, with the broker's own floor beside
# them (benches/amqp_floor.py: a bare socket client that only counts deliveries).
#
# Fairness: every timed command starts after a one-second pause, so the requeue of the
# command before it is finished in the broker; the two tools take turns going first; the
# queue's exact depth is checked after every round. Reports each round and the medians.
# Usage: benches/rabbitmq_peek.sh [rounds]   (RabbitMQ with management on 127.0.0.1, guest/guest)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
N=10000
URL="amqp://guest:guest@127.0.0.1:5672/%2f"
API="http://127.0.0.1:15672"
Q="mqscope-bench-peek-$$"
BIN=target/release/mqscope
work=$(mktemp -d)
trap 'curl -s -u guest:guest -X DELETE "$API/api/queues/%2F/$Q" >/dev/null; rm -rf "$work"' EXIT
[ -x "$BIN" ] || cargo build --release -q
curl -fsS -u guest:guest -o "$work/rabbitmqadmin" "$API/cli/rabbitmqadmin"
curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' -d '{"durable":false}' "$API/api/queues/%2F/$Q"
python3 - "$work/msgs.jsonl" "$N" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        body = json.dumps({"orderId": f"ORD-{i:07d}", "customer": "Zoë Ångström", "totalCents": 12900 + i,
                           "currency": "EUR", "items": [{"sku": "keyboard", "qty": 1}], "pad": "x" * 60})
        f.write(json.dumps({"payload": body, "properties": {"content_type": "application/json",
                            "correlation_id": f"c-{i}"}, "headers": {"x-order": i}}) + "\n")
PY
"$BIN" publish --from "$work/msgs.jsonl" --queue "$Q" --url "$URL" >/dev/null
# Exact counts from rabbitmqctl: the management API's lag by its stats interval and can show
# a snapshot taken in the middle of a peek.
depth() { rabbitmqctl -q list_queues name messages_ready messages_unacknowledged | awk -v q="$Q" '$1==q {print $2" ready, "$3" unacked"}'; }
echo "queue $Q: $(depth); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
lines=$("$BIN" peek "$Q" -n "$N" --json --url "$URL" | wc -l)
echo "mqscope peek -n $N prints $lines messages"
t() { local s e; sleep 1; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.3f}')"; }
mq() { t "$BIN" peek "$Q" -n "$N" --json --url "$URL"; }
admin() { t python3 "$work/rabbitmqadmin" -u guest -p guest get queue="$Q" count="$N" ackmode=ack_requeue_true; }
floor() { sleep 1; python3 benches/amqp_floor.py "$Q" "$N" | awk '{print $8}'; }
: >"$work/rounds"
for round in $(seq 1 "$ROUNDS"); do
  if [ $((round % 2)) -eq 1 ]; then m=$(mq); r=$(admin); else r=$(admin); m=$(mq); fi
  f=$(floor)
  echo "$m $r $f" >>"$work/rounds"
  python3 -c "print(f'round $round: mqscope {$m:.3f} s, rabbitmqadmin {$r:.3f} s, ratio {$r/$m:.1f}x; broker floor {$f:.3f} s; after all three: $(depth)')"
done
python3 - "$work/rounds" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
m, r, f = (statistics.median(c) for c in zip(*rows))
ratios = sorted(b / a for a, b, _ in rows)
print(f"median: mqscope {m:.3f} s, rabbitmqadmin {r:.3f} s, ratio of medians {r/m:.1f}x "
      f"(per round {ratios[0]:.1f}-{ratios[-1]:.1f}x); broker floor {f:.3f} s, mqscope = floor + {1000*(m-f):.0f} ms")
PY
