#!/usr/bin/env bash
# HL7 v2 ORU^R01 into the lab pipeline (issue 5): observations/s end to end and critical-alert latency, 127.0.0.1 only.
#   createdb -h 127.0.0.1 -U postgres mhospital_bench     # once (the script tries it too)
#   bash bench/hl7_bench.sh                               # MESSAGES=2000 RESULTS=5 CONCURRENCY=4 CRITICAL=50 by default
#   BATCH=50 bash bench/hl7_bench.sh                      # 50 messages per request, as one HL7 batch (BHS … BTS)
# The web server (WORKERS uvicorn processes) and ONE Celery worker (CELERY_CONCURRENCY processes) on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mhospital_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/3}"
export DEBUG=0 ALLOWED_HOSTS=127.0.0.1 LOG_LEVEL=WARNING LANGUAGE_CODE=en
# This checkout's code, whichever virtualenv runs it (PYTHON=/path/to/venv/bin/python).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-.venv/bin/python}"
BIN="$(dirname "$PY")"
PORT="${PORT:-8076}" WORKERS="${WORKERS:-2}" CELERY_CONCURRENCY="${CELERY_CONCURRENCY:-2}"
MESSAGES="${MESSAGES:-2000}" RESULTS="${RESULTS:-5}" CONCURRENCY="${CONCURRENCY:-4}" CRITICAL="${CRITICAL:-50}"
BATCH="${BATCH:-1}"
mkdir -p var
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

createdb -h 127.0.0.1 -U postgres mhospital_bench 2>/dev/null || true
"$PY" manage.py migrate --noinput >/dev/null
# A clean slate of lab results each run (the bench hospital's patients, device and clinician stay).
"$PY" manage.py shell --no-imports -c "
from diagnostics.models import LabAlertAck, LabAlert, Observation, LabMessage
LabAlertAck.objects.all().delete(); LabAlert.objects.all().delete(); Observation.objects.all().delete()
LabMessage.objects.all().delete()"
"$BIN/uvicorn" mhospital.asgi:application --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
  --log-level warning --no-access-log 2> var/bench-hl7-server.log &
pids+=($!)
"$BIN/celery" -A mhospital worker --concurrency "$CELERY_CONCURRENCY" --loglevel WARNING -n "hl7bench@%h" \
  2> var/bench-hl7-worker.log &
pids+=($!)
for _ in $(seq 120); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.5; done

# Whose CPU time the bench counts: the server's and the worker's process trees.
export SERVER_PIDS="${pids[0]}" WORKER_PIDS="${pids[1]}"
"$PY" bench/hl7_bench.py --base "http://127.0.0.1:$PORT" --messages "$MESSAGES" --results "$RESULTS" \
  --concurrency "$CONCURRENCY" --critical "$CRITICAL" --batch "$BATCH"
echo "server errors logged: $(grep -c ' ERROR ' var/bench-hl7-server.log var/bench-hl7-worker.log || true)"
