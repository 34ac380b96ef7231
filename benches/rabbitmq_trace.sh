#!/usr/bin/env bash
# Trace benchmark: `mqscope trace ID` across 50 RabbitMQ classic queues of 2,000 ~200-byte
# messages each (100,000 messages), the ID in 5 of them (property, header, JSON body), in
# a vhost of its own. Peer: what people do today, one queue at a time with the management
# API's get (`rabbitmqadmin get ... ackmode=ack_requeue_true | grep`), run once over all 50.
# Checks every queue still holds 2,000 ready messages after each run.
# Usage: benches/rabbitmq_trace.sh [runs]   (RabbitMQ with management on 127.0.0.1, guest/guest)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
QUEUES=50
PER=2000
VHOST="mqscope-bench-trace-$$"
API="http://127.0.0.1:15672"
URL="amqp://guest:guest@127.0.0.1:5672/$VHOST"
ID="bench-trace-7f3c2a"
BIN=target/release/mqscope
work=$(mktemp -d)
api() { curl -fsS -u guest:guest -H 'content-type: application/json' "$@"; }
trap 'api -X DELETE "$API/api/vhosts/$VHOST" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
[ -x "$BIN" ] || cargo build --release -q
api -X PUT "$API/api/vhosts/$VHOST" >/dev/null
api -X PUT -d '{"configure":".*","write":".*","read":".*"}' "$API/api/permissions/$VHOST/guest" >/dev/null
curl -fsS -u guest:guest -o "$work/rabbitmqadmin" "$API/cli/rabbitmqadmin"
python3 - "$work" "$QUEUES" "$PER" "$ID" <<'PY'
import json, sys
work, queues, per, wanted = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
# The ID sits in queues 3, 13, 23, 33, 43 at different depths and in different places.
places = {3: ("property", 10), 13: ("header", 700), 23: ("body", 1300), 33: ("property", 1999), 43: ("header", 0)}
for q in range(queues):
    with open(f"{work}/q{q:02d}.jsonl", "w") as f:
        for i in range(per):
            corr = f"c-{q}-{i}"
            where, at = places.get(q, (None, -1))
            rec = {"properties": {"content_type": "application/json", "message_id": f"m-{q}-{i}"}, "headers": {}}
            body = {"orderId": f"ORD-{q:02d}{i:05d}", "customer": "Zoë Ångström", "totalCents": 12900 + i,
                    "currency": "EUR", "pad": "x" * 70}
            if i == at and where == "property":
                rec["properties"]["correlation_id"] = wanted
            elif i == at and where == "header":
                rec["headers"]["x-correlation-id"] = wanted
            elif i == at and where == "body":
                body["correlationId"] = wanted
            else:
                rec["properties"]["correlation_id"] = corr
            rec["payload"] = json.dumps(body)
            f.write(json.dumps(rec) + "\n")
PY
for q in $(seq -f '%02g' 0 $((QUEUES - 1))); do
  api -X PUT -d '{"durable":false}' "$API/api/queues/$VHOST/bench-q$q" >/dev/null
  "$BIN" publish --from "$work/q$q.jsonl" --queue "bench-q$q" --url "$URL" >/dev/null
done
depths() { rabbitmqctl -q list_queues -p "$VHOST" name messages_ready messages_unacknowledged | awk '$1 ~ /^bench-q/ {r+=$2; u+=$3; n++} END {print n" queues, "r" ready, "u" unacked"}'; }
echo "vhost $VHOST: $(depths)"
for run in $(seq 1 "$RUNS"); do
  /usr/bin/time -f '%e %M' -o "$work/time" "$BIN" trace "$ID" --json --url "$URL" > "$work/out.json"
  read -r secs kb < "$work/time"
  python3 - "$work/out.json" "$secs" "$kb" "$run" "$(depths)" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
secs, kb, run, after = float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
print(f"run {run}: mqscope {secs:.2f} s wall ({t['elapsed_ms']} ms in trace), {t['scanned']} messages "
      f"in {t['queues_scanned']} queues, {len(t['hops'])} hops, {t['scanned']/secs:,.0f} messages/s, "
      f"peak {kb/1024:.0f} MiB; after: {after}")
PY
done
# The peer, once: every queue through the management API's get, grepping for the ID.
s=$(date +%s.%N)
hits=0
for q in $(seq -f '%02g' 0 $((QUEUES - 1))); do
  n=$(python3 "$work/rabbitmqadmin" -u guest -p guest -V "$VHOST" -f raw_json get queue="bench-q$q" \
        count="$PER" ackmode=ack_requeue_true | grep -o "$ID" | wc -l || true)
  hits=$((hits + n))
done
e=$(date +%s.%N)
python3 -c "print(f'peer: rabbitmqadmin get | grep over {$QUEUES} queues: {$e-$s:.2f} s, {$hits} mentions of the ID; after: $(depths)')"
