#!/usr/bin/env bash
# QIDO-RS study search p95 with 100,000 instances indexed (issue 4), 127.0.0.1 only.
#   createdb -h 127.0.0.1 -U postgres mhospital_bench; bash bench/worklist_bench.sh   # seeds, once
#   bash bench/qido_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mhospital_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/14}"
export DEBUG=0 ALLOWED_HOSTS=127.0.0.1 LOG_LEVEL=WARNING
PORT="${PORT:-8079}" WORKERS="${WORKERS:-3}"
.venv/bin/python manage.py migrate --noinput >/dev/null
token="$(.venv/bin/python manage.py shell --no-imports -c "
from knox.models import AuthToken; from hospitals.models import User
print(AuthToken.objects.create(User.objects.get(username='bench.clinician'))[1])")"
.venv/bin/uvicorn mhospital.asgi:application --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
  --log-level warning --no-access-log 2> var/bench-server.log &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 120); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.5; done
.venv/bin/python bench/qido_bench.py --url "http://127.0.0.1:$PORT" --token "$token" "$@"
