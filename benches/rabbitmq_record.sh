#!/usr/bin/env bash
# Recorder cost on the broker: publish throughput of `mqscope publish --from FILE` (50,000
# ~200-byte messages, confirms pipelined) to a fanout exchange with two queues, in a vhost
# of its own, in turns: tracing off, tracing on with nobody tapping, and tracing on with
# `mqscope record` tapping the firehose (the recorder needs tracing on, so the second column
# is the firehose's own cost and the third adds the recorder's). With the recorder: what it
# stored, the copies it counted dropped, the messages really missing from its database, and
# its peak memory.
# Usage: benches/rabbitmq_record.sh [runs]   (RabbitMQ with management on 127.0.0.1, guest/guest;
# another broker with API=http://127.0.0.1:15690 AMQP=127.0.0.1:5690, e.g. 4.3 from
# scripts/rabbitmq-versions)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
N=${N:-50000}
VHOST="mqscope-bench-record-$$"
API=${API:-http://127.0.0.1:15672}
URL="amqp://guest:guest@${AMQP:-127.0.0.1:5672}/$VHOST"
BIN=target/release/mqscope
work=$(mktemp -d)
api() { curl -fsS -u guest:guest -H 'content-type: application/json' "$@"; }
trap 'api -X DELETE "$API/api/vhosts/$VHOST" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
[ -x "$BIN" ] || cargo build --release -q
api -X PUT "$API/api/vhosts/$VHOST" >/dev/null
# The management API named too: it is not at the AMQP host's port 15672 for another broker.
printf '[profiles.bench]\nurl = "%s"\nmanagement_url = "%s"\n' "$URL" "$API" > "$work/config.toml"
api -X PUT -d '{"configure":".*","write":".*","read":".*"}' "$API/api/permissions/$VHOST/guest" >/dev/null
tracing() { api -X PUT -d "{\"tracing\":$1}" "$API/api/vhosts/$VHOST" >/dev/null; }
api -X PUT -d '{"type":"fanout","durable":false}' "$API/api/exchanges/$VHOST/orders" >/dev/null
for q in billing shipping; do
  api -X PUT -d '{"durable":false}' "$API/api/queues/$VHOST/$q" >/dev/null
  api -X POST -d '{"routing_key":""}' "$API/api/bindings/$VHOST/e/orders/q/$q" >/dev/null
done
python3 - "$work/m.jsonl" "$N" <<'PY'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        body = {"orderId": f"ORD-{i:07d}", "customer": "Zoë Ångström", "totalCents": 12900 + i,
                "currency": "EUR", "pad": "x" * 70}
        rec = {"properties": {"content_type": "application/json", "message_id": f"m-{i}",
                              "correlation_id": f"c-{i // 10}"}, "headers": {"x-tenant": "eu"},
               "payload": json.dumps(body)}
        f.write(json.dumps(rec) + "\n")
PY
purge() { for q in billing shipping; do api -X DELETE "$API/api/queues/$VHOST/$q/contents" >/dev/null; done; }
publish() {
  local s e
  s=$(date +%s.%N)
  "$BIN" publish --from "$work/m.jsonl" --exchange orders --config "$work/config.toml" --profile bench >/dev/null
  e=$(date +%s.%N)
  python3 -c "print(f'{$N / ($e - $s):.0f}')"
}
for run in $(seq 1 "$RUNS"); do
  purge; sleep 1
  tracing false
  off=$(publish)
  purge; sleep 1
  tracing true
  without=$(publish)
  purge; sleep 1
  rm -f "$work"/rec.db*
  /usr/bin/time -f '%M' -o "$work/rec.time" "$BIN" record --db "$work/rec.db" --config "$work/config.toml" --profile bench --interval 1s --json \
    > "$work/rec.out" 2> "$work/rec.err" &
  rec=$!
  sleep 2
  with=$(publish)
  # Let the recorder catch up (its tap queue drains), then stop it.
  # Done when all are stored, or nothing more came for 3 s (the rest was dropped).
  last=-1 still=0
  for _ in $(seq 1 60); do
    stored=$(tail -n 1 "$work/rec.out" 2>/dev/null | python3 -c 'import json,sys; print(json.loads(sys.stdin.read() or "{}").get("stored", 0))' 2>/dev/null || echo 0)
    [ "$stored" -ge "$N" ] && break
    if [ "$stored" -eq "$last" ]; then still=$((still + 1)); else still=0; fi
    [ "$still" -ge 3 ] && break
    last=$stored
    sleep 1
  done
  kill -INT "$(pgrep -P "$rec" mqscope || echo "$rec")" 2>/dev/null || true
  wait "$rec" || true
  python3 - "$work/rec.out" "$work/rec.time" "$run" "$without" "$with" "$off" "$work/rec.db" "$N" <<'PY'
import json, sqlite3, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not any("stored" in l for l in lines):
    sys.exit("the recorder printed no status: " + open(sys.argv[1].replace("rec.out", "rec.err")).read()[-2000:])
# What is really missing: the messages with no publish stored (dropped counts copies).
db = sqlite3.connect(sys.argv[7])
have = db.execute("select count(distinct message_id) from envelopes where kind = 'publish'").fetchone()[0]
missing = int(sys.argv[8]) - have
last = [l for l in lines if "stored" in l][-1]
kb = int(open(sys.argv[2]).read().split()[-1])
run, without, with_, off = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
print(f"run {run}: publish with tracing off {off:,}/s; tracing on, nobody tapping {without:,}/s "
      f"({without / off:.0%}); recorder tapping {with_:,}/s ({with_ / without:.0%} of tracing on, "
      f"{with_ / off:.0%} of off); "
      f"recorder stored {last['stored']:,}, dropped {last['dropped']:,} (copies), messages missing "
      f"{missing:,}, peak {kb / 1024:.0f} MiB")
PY
done
