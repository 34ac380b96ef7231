#!/usr/bin/env bash
# Replay benchmark: 10,000 dead letters (~200-byte JSON, dead-lettered by reject from a
# classic queue) replayed to their origin by `mqscope replay` (publisher confirms, then
# ack; journal synced per batch), side by side with a RabbitMQ dynamic shovel
# (ack-mode on-confirm, what the management UI's "move messages" sets up) moving the same
# 10,000 from the DLQ back to the queue. Runs alternate; each checks origin = 10,000 and
# DLQ = 0 afterwards. Usage: benches/rabbitmq_replay.sh [runs]
# Needs RabbitMQ with management on 127.0.0.1 (guest/guest); enables rabbitmq_shovel.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
N=10000
URL="amqp://guest:guest@127.0.0.1:5672/%2f"
API="http://127.0.0.1:15672"
Q="mqscope-bench-origin-$$"
DLQ="mqscope-bench-dlq-$$"
BIN=target/release/mqscope
WAIT=target/release/examples/wait_depth
work=$(mktemp -d)
export MQSCOPE_STATE_DIR="$work/state"
cleanup() {
  for q in "$Q" "$DLQ"; do curl -s -u guest:guest -X DELETE "$API/api/queues/%2F/$q" >/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
cargo build --release -q --bin mqscope --example wait_depth
rabbitmq-plugins enable -q rabbitmq_shovel >/dev/null
curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' -d '{"durable":true}' "$API/api/queues/%2F/$DLQ"
curl -fsS -u guest:guest -X PUT -H 'content-type: application/json' \
  -d "{\"durable\":true,\"arguments\":{\"x-dead-letter-exchange\":\"\",\"x-dead-letter-routing-key\":\"$DLQ\"}}" \
  "$API/api/queues/%2F/$Q"
python3 - "$work/msgs.jsonl" "$N" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        body = json.dumps({"orderId": f"ORD-{i:07d}", "customer": "Zoë Ångström", "totalCents": 12900 + i,
                           "currency": "EUR", "items": [{"sku": "keyboard", "qty": 1}], "pad": "x" * 60})
        f.write(json.dumps({"payload": body, "properties": {"content_type": "application/json",
                            "delivery_mode": 2, "message_id": f"m-{i}"}, "headers": {"x-order": i}}) + "\n")
PY
"$BIN" publish --from "$work/msgs.jsonl" --queue "$Q" --url "$URL" >/dev/null
kill_all() {  # dead-letter everything in the origin queue, wait until the DLQ has it all
  rabbitmqadmin -q get queue="$Q" count="$N" ackmode=reject_requeue_false >/dev/null
  "$WAIT" "$URL" "$DLQ" "$N" 60
  "$WAIT" "$URL" "$Q" 0 60
}
now() { date +%s.%N; }
for run in $(seq 1 "$RUNS"); do
  kill_all
  s=$(now)
  "$BIN" replay "$DLQ" --yes --json --max-replays 1000 --url "$URL" > "$work/report.json"
  "$WAIT" "$URL" "$Q" "$N" 60
  e=$(now)
  "$WAIT" "$URL" "$DLQ" 0 5
  m=$(python3 -c "print($e-$s)")
  kill_all
  s=$(now)
  rabbitmqctl -q set_parameter shovel "bench-$$" \
    "{\"src-protocol\":\"amqp091\",\"src-uri\":\"amqp://\",\"src-queue\":\"$DLQ\",\"dest-protocol\":\"amqp091\",\"dest-uri\":\"amqp://\",\"dest-queue\":\"$Q\",\"ack-mode\":\"on-confirm\",\"src-delete-after\":\"queue-length\"}" >/dev/null
  "$WAIT" "$URL" "$Q" "$N" 120
  e=$(now)
  "$WAIT" "$URL" "$DLQ" 0 5
  rabbitmqctl -q clear_parameter shovel "bench-$$" >/dev/null 2>&1 || true
  sh=$(python3 -c "print($e-$s)")
  python3 -c "print(f'run $run: mqscope replay {$m:.3f} s = {$N/$m:,.0f} msg/s; shovel {$sh:.3f} s = {$N/$sh:,.0f} msg/s; ratio {$sh/$m:.2f}x')"
done
