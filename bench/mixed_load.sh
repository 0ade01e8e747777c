#!/usr/bin/env bash
# The mixed load of issue 8 on 127.0.0.1, bounded in time: 50 clinicians browsing and uploading, 10
# specialists on the worklist, 5 analysers posting HL7 results (bench/mixed_locustfile.py), and video calls
# signalling beside them when bench/signalling_bench.py is there. Reports p50/p95/p99 per endpoint, errors,
# throughput, the server's and worker's CPU and memory, and the slowest SQL statements.
#   createdb -h 127.0.0.1 -U postgres mhospital_bench    # once
#   bash bench/mixed_load.sh           # SECONDS_=60 CLINICIANS=50 SPECIALISTS=10 ANALYSERS=5 CALLS=20
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mhospital_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/14}"
export DEBUG=0 ALLOWED_HOSTS=127.0.0.1 LOG_LEVEL=WARNING MEDIA_ROOT="${MEDIA_ROOT:-$PWD/var/bench-media}"
PORT="${PORT:-8095}" WORKERS="${WORKERS:-3}" SECONDS_="${SECONDS_:-60}" CALLS="${CALLS:-20}"
CLINICIANS="${CLINICIANS:-50}" SPECIALISTS="${SPECIALISTS:-10}" ANALYSERS="${ANALYSERS:-5}"
DB="${DATABASE_URL##*/}"
PG_LOG="${PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -1)}"
scratch="$(mktemp -d)"
pids=()
cleanup() {
  psql -q -h 127.0.0.1 -U postgres -c "ALTER DATABASE \"$DB\" RESET log_min_duration_statement" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT
mkdir -p var

[ -x .venv/bin/locust ] || .venv/bin/pip install --quiet -e '.[bench]'
.venv/bin/python bench/seed_worklist.py >/dev/null
.venv/bin/python bench/seed_mixed.py
# Statements slower than 50 ms go to PostgreSQL's log for the run (new connections only: servers start after).
psql -q -h 127.0.0.1 -U postgres -c "ALTER DATABASE \"$DB\" SET log_min_duration_statement = 50"
log_from=$( [ -n "$PG_LOG" ] && wc -l < "$PG_LOG" || echo 0)

.venv/bin/uvicorn mhospital.asgi:application --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
  --ws websockets-sansio --log-level warning --no-access-log 2> var/bench-server.log &
server=$!; pids+=($server)
nice -n 10 .venv/bin/celery -A mhospital worker --concurrency 2 --loglevel WARNING >/dev/null 2> var/bench-worker.log &
worker=$!; pids+=($worker)
for _ in $(seq 120); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" && break; sleep 0.5; done
for _ in $(seq 60); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/accounts/login/"; done

# CPU and memory of the server and the worker (each with its child processes), once a second.
.venv/bin/python - "$server" "$worker" > "$scratch/usage.json" <<'PY' &
import json, sys, time
import psutil
roots = [psutil.Process(int(pid)) for pid in sys.argv[1:]]
samples = []
for proc in [p for root in roots for p in [root, *root.children(recursive=True)]]:
    proc.cpu_percent(None)
try:
    while True:
        time.sleep(1)
        cpu = rss = 0.0
        for root in roots:
            for proc in [root, *root.children(recursive=True)]:
                try:
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                except psutil.Error:
                    pass
        samples.append((cpu, rss))
        print(json.dumps(samples), flush=True, file=open(sys.stdout.fileno(), "w", closefd=False))
except KeyboardInterrupt:
    pass
PY
sampler=$!; pids+=($sampler)

if [ -f bench/signalling_bench.py ] && [ "$CALLS" -gt 0 ]; then
  .venv/bin/python manage.py shell --no-imports -c "import bench.seed_calls as s; s.main($CALLS)" > "$scratch/calls.json"
  .venv/bin/python bench/signalling_bench.py --name mixed --url "ws://127.0.0.1:$PORT" --sessions "$scratch/calls.json" \
    --calls "$CALLS" --rate "$((CALLS * 2))" --paced-only > "$scratch/calls.out" 2>&1 &
  calls=$!; pids+=($calls)
fi

.venv/bin/locust -f bench/mixed_locustfile.py --headless \
  --users "$((CLINICIANS + SPECIALISTS + ANALYSERS))" --spawn-rate 10 --run-time "${SECONDS_}s" \
  --host "http://127.0.0.1:$PORT" --csv "$scratch/mixed" --only-summary --stop-timeout 10 >/dev/null 2>&1 || true
kill "$sampler" 2>/dev/null || true
[ -n "${calls:-}" ] && { wait "$calls" 2>/dev/null || true; }

.venv/bin/python - "$scratch" "${PG_LOG:-}" "$log_from" <<'PY'
import csv, json, re, sys
from pathlib import Path
scratch, pg_log, log_from = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rows = list(csv.DictReader(open(scratch / "mixed_stats.csv")))
print("| endpoint | requests | failures | p50 ms | p95 ms | p99 ms | req/s |")
print("|---|---|---|---|---|---|---|")
for row in rows:
    print(f"| {row['Name']} | {row['Request Count']} | {row['Failure Count']} | {row['50%']} | {row['95%']} | "
          f"{row['99%']} | {float(row['Requests/s']):.1f} |")
total = next(row for row in rows if row["Name"] == "Aggregated")
errors = int(total["Failure Count"]) / max(int(total["Request Count"]), 1)
print(f"\nerror rate: {errors:.2%} of {total['Request Count']} requests; throughput {float(total['Requests/s']):.1f} req/s")
try:
    samples = json.loads((scratch / "usage.json").read_text().strip().splitlines()[-1])
    cpu = [c for c, _ in samples]
    rss = [r for _, r in samples]
    print(f"server + worker CPU: mean {sum(cpu) / len(cpu):.0f}%, max {max(cpu):.0f}% (200% = both cores); "
          f"memory: max {max(rss) / 2**20:.0f} MB")
except (OSError, ValueError, IndexError):
    print("no CPU/memory samples")
calls = scratch / "calls.out"
if calls.exists():
    print("video calls signalling beside it:", calls.read_text().strip().splitlines()[-1][:400])
if pg_log:
    slow = []
    for line in open(pg_log, errors="replace").readlines()[log_from:]:
        found = re.search(r"duration: ([\d.]+) ms\s+(?:statement|execute [^:]*): (.*)", line)
        if found:
            slow.append((float(found.group(1)), re.sub(r"\s+", " ", found.group(2))[:160]))
    print(f"\nslowest statements (of {len(slow)} over 50 ms):")
    for ms, statement in sorted(slow, reverse=True)[:8]:
        print(f"  {ms:8.1f} ms  {statement}")
PY
echo "server errors logged: $(grep -c ' ERROR ' var/bench-server.log var/bench-worker.log || true)"
