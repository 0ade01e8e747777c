#!/usr/bin/env bash
# STOW-RS accept rate and time to previews: M-Hospital against Orthanc (issue 4), 127.0.0.1 only.
#   apt-get install -y orthanc orthanc-dicomweb     # once (and nginx for PROXY=nginx)
#   createdb -h 127.0.0.1 -U postgres mhospital_bench; bash bench/worklist_bench.sh   # seeds, once
#   bash bench/stow_bench.sh                        # INSTANCES=2000 CONCURRENCY=4 BATCH=10 by default;
#                                                   # ONLY=mhospital or ONLY=orthanc runs one side, CINE=0 skips the cine timing,
#                                                   # PREVIEWS=0 times the upload only (not the previews),
#                                                   # ROUNDS=5 (with PREVIEWS=0) repeats the two uploads in turn
#                                                   # and prints each round's ratios and their median,
#                                                   # WORKER=0 (with PREVIEWS=0 CINE=0) starts no Celery worker,
#                                                   # SERVER_VENV=path runs the server and the worker from
#                                                   # another virtualenv (another Python build), the client not,
#                                                   # PROXY=nginx puts nginx in front of WORKERS single servers
set -euo pipefail
if [ "${WORKER:-1}" != 1 ] && { [ "${PREVIEWS:-1}" != 0 ] || [ "${CINE:-5}" != 0 ]; }; then
  echo "WORKER=0 renders nothing: give PREVIEWS=0 CINE=0 as well" >&2
  exit 2
fi
source "$(dirname "$0")/stow_setup.sh"  # cd, settings, a clean slate, $token and $patient
PORT="${PORT:-8078}" WORKERS="${WORKERS:-3}" INSTANCES="${INSTANCES:-2000}" CONCURRENCY="${CONCURRENCY:-4}"
BATCH="${BATCH:-10}" CELERY_CONCURRENCY="${CELERY_CONCURRENCY:-2}" SERVER_VENV="${SERVER_VENV:-.venv}"
scratch="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null; rm -rf "$scratch"
  [ "${WORKER:-1}" = 1 ] || .venv/bin/celery -A mhospital purge -f >/dev/null  # the tasks no worker took
}
trap cleanup EXIT

orthanc_config "$scratch/orthanc.json" 8042 4243 "$scratch/orthanc-db"
Orthanc "$scratch/orthanc.json" >"$scratch/orthanc.log" 2>&1 &
pids+=($!)
if [ "${PROXY:-}" = nginx ]; then
  # As deployed behind a TLS proxy: nginx in front of WORKERS single-process servers, each request to the
  # least busy one (a client's kept-alive connection is not tied to one server process). nginx's CPU is
  # counted as M-Hospital's.
  : > var/bench-server.log
  upstreams=""
  for n in $(seq "$WORKERS"); do
    "$SERVER_VENV/bin/uvicorn" mhospital.asgi:application --host 127.0.0.1 --port $((PORT + n)) \
      --log-level warning --no-access-log 2>> var/bench-server.log &
    pids+=($!)
    upstreams+="server 127.0.0.1:$((PORT + n)); "
  done
  nginx_conf "$scratch/nginx.conf" "$PORT" "$upstreams" "$scratch"
  nginx -c "$scratch/nginx.conf" -e "$scratch/nginx-error.log" -g "daemon off;" &
  pids+=($!)
else
  "$SERVER_VENV/bin/uvicorn" mhospital.asgi:application --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
    --log-level warning --no-access-log 2> var/bench-server.log &
  pids+=($!)
fi
# The pipeline runs beside the web server, as on a one-machine install: at a lower priority (NICE) so
# that accepting images comes first and rendering takes the spare CPU. WORKER=0 leaves it out (its
# worker on another machine, as docker-compose allows): the accept alone, as Orthanc's is.
if [ "${WORKER:-1}" = 1 ]; then
  nice -n "${NICE:-10}" "$SERVER_VENV/bin/celery" -A mhospital worker --concurrency "$CELERY_CONCURRENCY" \
    --loglevel WARNING 2> var/bench-worker.log &
  pids+=($!)
else
  : > var/bench-worker.log
fi
# The login page, not /healthz: that answers 503 (logged as a server error) until the worker is up; behind
# nginx, 502 until the servers are.
for url in "http://127.0.0.1:8042/system" "http://127.0.0.1:$PORT/accounts/login/"; do
  for _ in $(seq 120); do curl -fs -o /dev/null "$url" && break; sleep 0.5; done
done

.venv/bin/python bench/stow_bench.py --instances "$INSTANCES" --batch "$BATCH" --concurrency "$CONCURRENCY" \
  --mhospital "http://127.0.0.1:$PORT" --orthanc http://127.0.0.1:8042 --token "$token" --patient-id "$patient" \
  ${PROXY:+--proxy "$PROXY"} ${ONLY:+--only "$ONLY"} ${CINE:+--cine "$CINE"} ${PREVIEWS:+--previews "$PREVIEWS"} ${ROUNDS:+--rounds "$ROUNDS"}
echo "server errors logged: $(grep -c ' ERROR ' var/bench-server.log var/bench-worker.log || true)"
