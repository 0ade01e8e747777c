#!/usr/bin/env bash
# Where a STOW-RS request spends its CPU (issue 8's profile of the slowest path): one uvicorn process under
# py-spy (samples of the threads holding the GIL), the bench's instances sent to it, the functions with the
# largest share printed; the server's CPU per instance (stow_bench.py's figure) beside it. 127.0.0.1 only.
#   bash bench/stow_profile.sh          # INSTANCES=1000 CONCURRENCY=2 RATE=200 (samples a second); PROFILE=0 for the CPU figure alone
set -euo pipefail
source "$(dirname "$0")/stow_setup.sh"  # cd, settings, a clean slate, $token and $patient
PORT="${PORT:-8079}" INSTANCES="${INSTANCES:-1000}" CONCURRENCY="${CONCURRENCY:-2}"
.venv/bin/uvicorn mhospital.asgi:application --host 127.0.0.1 --port "$PORT" --workers 1 --log-level warning \
  --no-access-log 2> var/bench-profile-server.log &
server=$!
spy=""
trap 'kill $server $spy 2>/dev/null; wait 2>/dev/null; .venv/bin/celery -A mhospital purge -f >/dev/null' EXIT
for _ in $(seq 120); do curl -s -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" && break; sleep 0.5; done
for _ in $(seq 20); do curl -s -o /dev/null "http://127.0.0.1:$PORT/accounts/login/"; done
if [ "${PROFILE:-1}" = 1 ]; then
  .venv/bin/py-spy record --pid "$server" --gil --rate ${RATE:-200} --format raw -o var/bench-profile.txt --nonblocking \
    >/dev/null 2>&1 &
  spy=$!
  sleep 1
fi
.venv/bin/python bench/stow_bench.py --instances "$INSTANCES" --batch 10 --concurrency "$CONCURRENCY" \
  --mhospital "http://127.0.0.1:$PORT" --token "$token" --patient-id "$patient" --only mhospital --previews 0 --cine 0 \
  | grep -E '"rate"|cpu_ms|instances,'
if [ -n "$spy" ]; then
  kill -INT "$spy"; wait "$spy" 2>/dev/null || true; spy=""
  .venv/bin/python bench/profile_top.py var/bench-profile.txt
fi
