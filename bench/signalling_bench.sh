#!/usr/bin/env bash
# Signalling under load (issue 6): N calls (2N signed-in sockets) against each target in one run,
# 127.0.0.1 only; every server it starts is stopped on exit, each target is bounded in time.
#   bash bench/signalling_bench.sh        # CALLS=500 RATE=400 TARGETS="core pubsub pubsub2 memory relay"
#   CALLS=100 TARGETS="core relay" bash bench/signalling_bench.sh
#   RAMP=20 bash bench/signalling_bench.sh  # the paced round's calls start over 20 s, not all in one
# Targets: core = uvicorn, 1 process, channels-redis core layer (bounded pool); pubsub = the same with
# CHANNELS_LAYER=pubsub; core2/pubsub2 = two uvicorn processes on two ports, the two sides of each call
# on different processes; memory = 1 process, in-memory layer; relay = bench/signalling_relay.py (the floor).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export PYTHONPATH="$PWD"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mh_call_bench}"
BENCH_REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/5}"
export DEBUG=0 ALLOWED_HOSTS=127.0.0.1 LOG_LEVEL=WARNING CHANNELS_PREFIX="${CHANNELS_PREFIX:-call-bench}"
CALLS="${CALLS:-500}" RATE="${RATE:-400}" RAMP="${RAMP:-0}" PORT="${PORT:-8500}" LIMIT="${LIMIT:-600}"
# Its own database, made on the first run.
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '${DATABASE_URL##*/}'" | grep -q 1 \
  || createdb -h 127.0.0.1 -U postgres "${DATABASE_URL##*/}"
TARGETS="${TARGETS:-core pubsub pubsub2 memory relay}"
UVICORN_OPTS="${UVICORN_OPTS:---loop uvloop --http httptools --ws websockets-sansio --ws-per-message-deflate false}"
OUT="${OUT:-var/signalling-bench.jsonl}"
mkdir -p var
scratch="$(mktemp -d)"
pids=()
stop() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
         for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done; pids=(); }
trap 'stop; rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM

REDIS_URL="$BENCH_REDIS_URL" "$PY" manage.py migrate --noinput >/dev/null
REDIS_URL="$BENCH_REDIS_URL" "$PY" manage.py shell --no-imports \
  -c "import bench.seed_calls as s; s.main($CALLS)" > "$scratch/sessions.json"

serve() {  # serve PORT [env...]: one uvicorn process of the application
  local port="$1"; shift
  env "$@" "$PY" -m uvicorn mhospital.asgi:application --host 127.0.0.1 --port "$port" $UVICORN_OPTS \
    --log-level warning --no-access-log 2>>var/signalling-bench-server.log &
  pids+=($!)
}
ready() { for _ in $(seq 120); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.5; done
          echo "server on $1 did not start" >&2; exit 1; }

: > "$OUT.tmp"
for target in $TARGETS; do
  urls="ws://127.0.0.1:$PORT"
  # A target that failed calls leaves them ringing or active: each target starts from none.
  REDIS_URL="$BENCH_REDIS_URL" "$PY" manage.py shell --no-imports -c "from consultations.models import Call
Call.objects.filter(consultation__patient__record_number__startswith='BENCH-CALL-', state__in=['ringing', 'active']).update(state='ended')"
  case "$target" in
    core)   serve "$PORT" REDIS_URL="$BENCH_REDIS_URL" CHANNELS_LAYER=core ;;
    pubsub) serve "$PORT" REDIS_URL="$BENCH_REDIS_URL" CHANNELS_LAYER=pubsub ;;
    core2|pubsub2)
            serve "$PORT" REDIS_URL="$BENCH_REDIS_URL" CHANNELS_LAYER="${target%2}"
            serve "$((PORT + 1))" REDIS_URL="$BENCH_REDIS_URL" CHANNELS_LAYER="${target%2}"
            urls="ws://127.0.0.1:$PORT,ws://127.0.0.1:$((PORT + 1))" ;;
    memory) serve "$PORT" REDIS_URL= ;;
    relay)  "$PY" bench/signalling_relay.py --port "$PORT" & pids+=($!) ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
  esac
  ready "$PORT"; case "$target" in *2) ready "$((PORT + 1))" ;; esac
  timeout "$LIMIT" "$PY" bench/signalling_bench.py --name "$target" --url "$urls" --sessions "$scratch/sessions.json" \
    --calls "$CALLS" --rate "$RATE" --ramp "$RAMP" --pids "$(IFS=,; echo "${pids[*]}")" | tee -a "$OUT.tmp" \
    || echo "{\"target\": \"$target\", \"failed\": true}" | tee -a "$OUT.tmp"
  redis_clients="$(redis-cli -u "$BENCH_REDIS_URL" info clients 2>/dev/null | grep connected_clients || true)"
  echo "$target: after the run, redis $redis_clients" >&2
  stop
  sleep 1
done
mv "$OUT.tmp" "$OUT"
"$PY" - "$OUT" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
floor = next((r for r in rows if r.get("target") == "relay" and not r.get("failed")), None)
print(f"{'target':8} {'conn err':>8} {'open s':>7} {'KB/sock':>8} {'p50':>7} {'p99':>8} {'max':>8} {'lost':>5} {'failed':>6} {'sat msg/s':>9} {'p99 x relay':>11} {'sat x relay':>11}")
for r in rows:
    if r.get("failed"):
        print(f"{r['target']:8} failed (timeout or crash)"); continue
    p, u = r["paced"], r["unpaced"]
    ratio = lambda a, b: f"{a / b:.1f}" if floor and b else "-"
    print(f"{r['target']:8} {r['connect_errors']:>8} {r['open_all_s']:>7} {r['kb_per_socket']!s:>8} {p['p50_ms']:>7} {p['p99_ms']:>8} "
          f"{p['max_ms']:>8} {p['lost'] + u['lost']:>5} {p['failed_calls'] + u['failed_calls']:>6} {u['msg_per_s']:>9} "
          f"{ratio(p['p99_ms'], floor['paced']['p99_ms'] if floor else 0):>11} {ratio(u['msg_per_s'], floor['unpaced']['msg_per_s'] if floor else 0):>11}")
PY
