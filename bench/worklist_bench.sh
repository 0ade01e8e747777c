#!/usr/bin/env bash
# Worklist and patient search under load (issue 3): 20 concurrent users for 60 s against 127.0.0.1.
#   createdb -h 127.0.0.1 -U postgres mhospital_bench   # once
#   bash bench/worklist_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mhospital_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/14}"
export DEBUG=0 ALLOWED_HOSTS=127.0.0.1 LOG_LEVEL=WARNING
PORT="${PORT:-8077}" USERS="${USERS:-20}" SECONDS_="${SECONDS_:-60}" WORKERS="${WORKERS:-3}"

[ -x .venv/bin/locust ] || .venv/bin/pip install --quiet -e '.[bench]'
.venv/bin/python bench/seed_worklist.py
.venv/bin/python bench/query_counts.py
.venv/bin/uvicorn mhospital.asgi:application --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
  --log-level warning --no-access-log 2> var/bench-server.log &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 60); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" && break; sleep 0.5; done
# Warm every worker (imports, template cache, database connection) before the measured run.
for _ in $(seq 60); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/accounts/login/"; done
.venv/bin/locust -f bench/locustfile.py --headless --users "$USERS" --spawn-rate "${SPAWN_RATE:-5}" --reset-stats \
  --run-time "${SECONDS_}s" --host "http://127.0.0.1:$PORT" --only-summary --stop-timeout 5 2>&1 \
  | grep -E "Name|GET|Aggregated|Percentage|----|Error" || true
echo "server errors logged: $(grep -c ' ERROR ' var/bench-server.log || true) (var/bench-server.log)"
