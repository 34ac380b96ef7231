#!/usr/bin/env bash
# Peek benchmark: `mqscope peek Q -n 10000` against `rabbitmqadmin get ... ackmode=ack_requeue_true`
# (the management API's get), side by side on the same classic queue of 10,000 ~200-byte
# messages on a local RabbitMQ. Checks the queue depth is unchanged after every run.
# Usage: benches/rabbitmq_peek.sh [runs]   (RabbitMQ with management on 127.0.0.1, guest/guest)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
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
echo "queue $Q: $(depth)"
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.3f}')"; }
for run in $(seq 1 "$RUNS"); do
  m=$(t "$BIN" peek "$Q" -n "$N" --json --url "$URL")
  lines=$("$BIN" peek "$Q" -n "$N" --json --url "$URL" | wc -l)
  r=$(t python3 "$work/rabbitmqadmin" -u guest -p guest get queue="$Q" count="$N" ackmode=ack_requeue_true)
  d=$(depth)
  python3 -c "print(f'run $run: mqscope {float($m):.3f} s ({$lines} messages), rabbitmqadmin {float($r):.3f} s, ratio {float($r)/float($m):.1f}x; after both: $d')"
done
