#!/usr/bin/env bash
# The server's CPU per request outside the STOW view and with it (issue 4): one uvicorn process, one request
# at a time, a refused request with a small and with a 3 MB body, and a STOW-RS request of ten images.
# 127.0.0.1 only.
#   createdb -h 127.0.0.1 -U postgres mhospital_bench; bash bench/worklist_bench.sh   # seeds, once
#   bash bench/request_cost.sh            # REPEAT=60 ROUNDS=3; FILE_UPLOAD_MAX_MEMORY_SIZE=... to compare
#   OTHER=/tmp/old bash bench/request_cost.sh   # beside a server from another checkout (git worktree add /tmp/old REV)
set -euo pipefail
source "$(dirname "$0")/stow_setup.sh"  # cd, settings, a clean slate, $token and $patient
PORT="${PORT:-8077}"
# One server from this checkout, and with OTHER=path a second from that checkout (another version of the
# code, run with this one's virtualenv): the same requests alternate between the two, round by round.
servers=()
trap 'kill "${servers[@]}" 2>/dev/null; wait 2>/dev/null; .venv/bin/celery -A mhospital purge -f >/dev/null' EXIT
compare=()
for checkout in "$PWD" ${OTHER:+"$OTHER"}; do
  port=$((PORT + ${#servers[@]}))
  (cd "$checkout" && exec "$OLDPWD/.venv/bin/uvicorn" mhospital.asgi:application --host 127.0.0.1 --port "$port" \
    --log-level warning --no-access-log) 2>> var/bench-request-cost.log &
  servers+=($!)
  compare+=(--url "http://127.0.0.1:$port" --pid "$!" --label "$(git -C "$checkout" describe --always --dirty)")
  for _ in $(seq 120); do curl -fs -o /dev/null "http://127.0.0.1:$port/accounts/login/" && break; sleep 0.5; done
done
.venv/bin/python bench/request_cost.py "${compare[@]}" --token "$token" --patient-id "$patient" \
  --repeat "${REPEAT:-60}" --rounds "${ROUNDS:-3}"
