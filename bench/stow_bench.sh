#!/usr/bin/env bash
# STOW-RS accept rate and time to previews: M-Hospital against Orthanc (issue 4), 127.0.0.1 only.
#   apt-get install -y orthanc orthanc-dicomweb     # once
#   createdb -h 127.0.0.1 -U postgres mhospital_bench; bash bench/worklist_bench.sh   # seeds, once
#   bash bench/stow_bench.sh                        # INSTANCES=2000 CONCURRENCY=4 BATCH=10 by default;
#                                                   # ONLY=mhospital or ONLY=orthanc runs one side, CINE=0 skips the cine timing,
#                                                   # PREVIEWS=0 times the upload only (not the previews),
#                                                   # SERVER_VENV=path runs the server and the worker from
#                                                   # another virtualenv (another Python build), the client not
set -euo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mhospital_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/14}"
export DEBUG=0 ALLOWED_HOSTS=127.0.0.1 LOG_LEVEL=WARNING MEDIA_ROOT="${MEDIA_ROOT:-$PWD/var/bench-media}"
PORT="${PORT:-8078}" WORKERS="${WORKERS:-3}" INSTANCES="${INSTANCES:-2000}" CONCURRENCY="${CONCURRENCY:-4}"
BATCH="${BATCH:-10}" CELERY_CONCURRENCY="${CELERY_CONCURRENCY:-2}" SERVER_VENV="${SERVER_VENV:-.venv}"
scratch="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT

.venv/bin/python manage.py migrate --noinput >/dev/null
# A clean slate of images each run: the bench database keeps its patients and consultations.
.venv/bin/python manage.py shell --no-imports -c "
from diagnostics.models import Study; from consultations.models import Consultation
Consultation.studies.through.objects.all().delete(); Study.objects.all().delete()"
rm -rf "$MEDIA_ROOT"
# ... and no tasks left queued for them by a run that was stopped, or timed the upload only.
.venv/bin/celery -A mhospital purge -f >/dev/null
read -r token patient < <(.venv/bin/python manage.py shell --no-imports -c "
from knox.models import AuthToken; from hospitals.models import User; from patients.models import Patient
user = User.objects.get(username='bench.clinician')
AuthToken.objects.filter(user=user).delete()  # the tokens of earlier runs
patient = Patient.objects.filter(hospital=user.staff.hospital).order_by('pk').first()
print(AuthToken.objects.create(user)[1], patient.record_number)")

cat > "$scratch/orthanc.json" <<JSON
{ "Name": "bench", "StorageDirectory": "$scratch/orthanc-db", "IndexDirectory": "$scratch/orthanc-db",
  "HttpPort": 8042, "DicomPort": 4243, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"], "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
JSON
Orthanc "$scratch/orthanc.json" >"$scratch/orthanc.log" 2>&1 &
pids+=($!)
"$SERVER_VENV/bin/uvicorn" mhospital.asgi:application --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
  --log-level warning --no-access-log 2> var/bench-server.log &
pids+=($!)
# The pipeline runs beside the web server, as on a one-machine install: at a lower priority (NICE) so
# that accepting images comes first and rendering takes the spare CPU.
nice -n "${NICE:-10}" "$SERVER_VENV/bin/celery" -A mhospital worker --concurrency "$CELERY_CONCURRENCY" --loglevel WARNING \
  2> var/bench-worker.log &
pids+=($!)
# The login page, not /healthz: that answers 503 (logged as a server error) until the worker is up.
for url in "http://127.0.0.1:8042/system" "http://127.0.0.1:$PORT/accounts/login/"; do
  for _ in $(seq 120); do curl -s -o /dev/null "$url" && break; sleep 0.5; done
done

.venv/bin/python bench/stow_bench.py --instances "$INSTANCES" --batch "$BATCH" --concurrency "$CONCURRENCY" \
  --mhospital "http://127.0.0.1:$PORT" --orthanc http://127.0.0.1:8042 --token "$token" --patient-id "$patient" \
  ${ONLY:+--only "$ONLY"} ${CINE:+--cine "$CINE"} ${PREVIEWS:+--previews "$PREVIEWS"}
echo "server errors logged: $(grep -c ' ERROR ' var/bench-server.log var/bench-worker.log || true)"
