#!/usr/bin/env bash
# Instructions per instance accepted by STOW-RS, M-Hospital's server against Orthanc, both under valgrind's
# callgrind (issue 4): a figure the machine's load does not move, for comparing changes to the accept path.
# 127.0.0.1 only.
#   apt-get install -y valgrind orthanc orthanc-dicomweb                              # once
#   createdb -h 127.0.0.1 -U postgres mhospital_bench; bash bench/worklist_bench.sh   # seeds, once
#   bash bench/stow_instructions.sh       # INSTANCES=100 BATCH=10; about two and a half minutes idle;
#                                         # APP=module:attribute serves another ASGI application (on PYTHONPATH)
set -euo pipefail
source "$(dirname "$0")/stow_setup.sh"  # cd, settings, a clean slate, $token and $patient
PORT="${PORT:-8076}" INSTANCES="${INSTANCES:-100}" BATCH="${BATCH:-10}"
scratch="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null; rm -rf "$scratch"; .venv/bin/celery -A mhospital purge -f >/dev/null  # no worker ran
}
trap cleanup EXIT

orthanc_config "$scratch/orthanc.json" 8043 4244 "$scratch/orthanc-db"
mkdir "$scratch/callgrind"
grind=(valgrind --tool=callgrind --callgrind-out-file="$scratch/callgrind/%q{BENCH_SERVER}.%p")
BENCH_SERVER=orthanc "${grind[@]}" Orthanc "$scratch/orthanc.json" >"$scratch/orthanc.log" 2>&1 &
pids+=($!)
orthanc=$!
# One uvicorn process (no supervisor) serving one request at a time: its pid is the process that counts.
BENCH_SERVER=mhospital "${grind[@]}" .venv/bin/uvicorn "${APP:-mhospital.asgi:application}" --host 127.0.0.1 \
  --port "$PORT" --log-level warning --no-access-log 2> var/bench-instructions-server.log &
pids+=($!)
mhospital=$!
for url in "http://127.0.0.1:8043/system" "http://127.0.0.1:$PORT/accounts/login/"; do
  for _ in $(seq 600); do curl -s -o /dev/null "$url" && break; sleep 0.5; done
done

.venv/bin/python bench/stow_instructions.py --instances "$INSTANCES" --batch "$BATCH" \
  --mhospital "http://127.0.0.1:$PORT" --mhospital-pid "$mhospital" --orthanc http://127.0.0.1:8043 \
  --orthanc-pid "$orthanc" --token "$token" --patient-id "$patient" --out-dir "$scratch/callgrind"
