#!/usr/bin/env bash
# The server's CPU per request outside the STOW view and with it (issue 4): one uvicorn process, one request
# at a time, a refused request with a small and with a 3 MB body, and a STOW-RS request of ten images.
# 127.0.0.1 only.
#   createdb -h 127.0.0.1 -U postgres mhospital_bench; bash bench/worklist_bench.sh   # seeds, once
#   bash bench/request_cost.sh            # REPEAT=60 ROUNDS=3; FILE_UPLOAD_MAX_MEMORY_SIZE=... to compare
set -euo pipefail
source "$(dirname "$0")/stow_setup.sh"  # cd, settings, a clean slate, $token and $patient
PORT="${PORT:-8077}"
.venv/bin/uvicorn mhospital.asgi:application --host 127.0.0.1 --port "$PORT" --log-level warning --no-access-log \
  2> var/bench-request-cost.log &
server=$!
trap 'kill $server 2>/dev/null; wait 2>/dev/null; .venv/bin/celery -A mhospital purge -f >/dev/null' EXIT
for _ in $(seq 120); do curl -s -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" && break; sleep 0.5; done
.venv/bin/python bench/request_cost.py --url "http://127.0.0.1:$PORT" --token "$token" --patient-id "$patient" \
  --pid "$server" --repeat "${REPEAT:-60}" --rounds "${ROUNDS:-3}"
