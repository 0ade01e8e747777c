#!/usr/bin/env bash
# Scale-out on one machine (issue 8): two ASGI server processes and two Celery workers on PostgreSQL and
# Redis behind nginx on 127.0.0.1, under the worklist load; reports how the requests spread over the two
# servers and the latency through the balancer. 127.0.0.1 only, bounded in time, stops everything itself.
#   apt-get install -y nginx; createdb -h 127.0.0.1 -U postgres mhospital_bench   # once
#   bash bench/scaleout.sh            # USERS=20 SECONDS_=45 by default
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mhospital_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/14}"
export DEBUG=0 ALLOWED_HOSTS=127.0.0.1 LOG_LEVEL=WARNING
PORT="${PORT:-8090}" USERS="${USERS:-20}" SECONDS_="${SECONDS_:-45}"
BACKENDS=("${BACKEND_A:-8091}" "${BACKEND_B:-8092}")
scratch="$(mktemp -d)"
pids=()
cleanup() {
  [ -f "$scratch/nginx.pid" ] && kill "$(cat "$scratch/nginx.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

[ -x .venv/bin/locust ] || .venv/bin/pip install --quiet -e '.[bench]'
.venv/bin/python bench/seed_worklist.py >/dev/null

# The same settings on every process, as on several machines: only the port differs.
for backend in "${BACKENDS[@]}"; do
  .venv/bin/uvicorn mhospital.asgi:application --host 127.0.0.1 --port "$backend" --workers 1 \
    --proxy-headers --forwarded-allow-ips 127.0.0.1 --log-level warning --no-access-log 2>>var/bench-server.log &
  pids+=($!)
done
for n in 1 2; do
  .venv/bin/celery -A mhospital worker --concurrency 1 -n "scaleout$n@%h" --loglevel WARNING >/dev/null 2>>var/bench-worker.log &
  pids+=($!)
done

cat > "$scratch/nginx.conf" <<NGINX
worker_processes 1;
pid $scratch/nginx.pid;
error_log $scratch/error.log warn;
events { worker_connections 1024; }
http {
  log_format upstream '\$upstream_addr \$status \$request_time';
  access_log $scratch/access.log upstream;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  upstream mhospital { least_conn; server 127.0.0.1:${BACKENDS[0]}; server 127.0.0.1:${BACKENDS[1]}; keepalive 32; }
  server {
    listen 127.0.0.1:$PORT;
    client_max_body_size 1024m;
    location / {
      proxy_pass http://mhospital;
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 3600s;
    }
  }
}
NGINX
for backend in "${BACKENDS[@]}"; do
  for _ in $(seq 120); do curl -fs -o /dev/null "http://127.0.0.1:$backend/healthz" && break; sleep 0.5; done
done
nginx -c "$scratch/nginx.conf" -e "$scratch/error.log"
for _ in $(seq 60); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" && break; sleep 0.5; done
for _ in $(seq 40); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/accounts/login/"; done
: > "$scratch/access.log"

.venv/bin/locust -f bench/locustfile.py --headless --users "$USERS" --spawn-rate 5 --reset-stats \
  --run-time "${SECONDS_}s" --host "http://127.0.0.1:$PORT" --only-summary --stop-timeout 5 2>&1 \
  | grep -E "Name|GET|Aggregated|Percentage|----|Error" || true

echo "requests per server process (through nginx):"
awk '{print $1}' "$scratch/access.log" | sort | uniq -c
echo "statuses: $(awk '{print $2}' "$scratch/access.log" | sort | uniq -c | tr '\n' ' ')"
echo "workers answering: $(.venv/bin/celery -A mhospital inspect ping --timeout 5 2>/dev/null | grep -c 'pong' || true)"
echo "server errors logged: $(grep -c ' ERROR ' var/bench-server.log || true) (var/bench-server.log)"
