# Shared by the STOW-RS benches (sourced, not run): the bench database's settings, a clean slate of images,
# and an API token of the bench clinician with a patient of that clinician's hospital ($token, $patient).
#   createdb -h 127.0.0.1 -U postgres mhospital_bench; bash bench/worklist_bench.sh   # seeds, once
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/mhospital_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/14}"
export DEBUG=0 ALLOWED_HOSTS=127.0.0.1 LOG_LEVEL=WARNING MEDIA_ROOT="${MEDIA_ROOT:-$PWD/var/bench-media}"
mkdir -p var
.venv/bin/python manage.py migrate --noinput >/dev/null
# A clean slate of images each run: the bench database keeps its patients and consultations.
.venv/bin/python manage.py shell --no-imports -c "
from diagnostics.models import Study; from consultations.models import Consultation
Consultation.studies.through.objects.all().delete(); Study.objects.all().delete()
# ... and vacuumed now, not by autovacuum during a timed upload (PostgreSQL's CPU counts as M-Hospital's).
from django.db import connection
connection.cursor().execute('VACUUM ANALYZE diagnostics_instance, diagnostics_series, diagnostics_study')"
if [ -e "$MEDIA_ROOT" ]; then
  rm -rf "$MEDIA_ROOT"
  # ext4 passes over the inodes freed in the last 30-35 s when it allocates one, reading each: right after
  # the last run's files were deleted, creating a file cost 0.3 ms more of kernel CPU (0.73 against 0.43 ms
  # per 200 KB file after 10,000 deletions), in M-Hospital's upload and not in Orthanc's fresh directory.
  # Timing starts once that has passed (SETTLE=0 skips the wait).
  sleep "${SETTLE:-36}"
fi
# ... and no tasks left queued for them by a run that was stopped, or timed the upload only.
.venv/bin/celery -A mhospital purge -f >/dev/null
read -r token patient < <(.venv/bin/python manage.py shell --no-imports -c "
from knox.models import AuthToken; from hospitals.models import User; from patients.models import Patient
user = User.objects.get(username='bench.clinician')
AuthToken.objects.filter(user=user).delete()  # the tokens of earlier runs
patient = Patient.objects.filter(hospital=user.staff.hospital).order_by('pk').first()
print(AuthToken.objects.create(user)[1], patient.record_number)")

# orthanc_config FILE HTTP_PORT DICOM_PORT DIRECTORY: Orthanc with its DICOMweb plugin on 127.0.0.1.
orthanc_config() {
  cat > "$1" <<JSON
{ "Name": "bench", "StorageDirectory": "$4", "IndexDirectory": "$4",
  "HttpPort": $2, "DicomPort": $3, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"], "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
JSON
}

# nginx_conf FILE PORT "server ...; server ...;" DIRECTORY: nginx on 127.0.0.1:PORT passing each request to the
# least busy of the upstream servers over kept-alive connections, request bodies held in memory.
nginx_conf() {
  cat > "$1" <<NGINX
worker_processes 1;
pid $4/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  upstream mhospital { least_conn; $3 keepalive 16; }
  server {
    listen 127.0.0.1:$2;
    client_max_body_size 2g;
    client_body_buffer_size 16m;
    client_body_temp_path $4/nginx-body;
    proxy_temp_path $4/nginx-proxy;
    location / {
      proxy_pass http://mhospital;
      proxy_http_version 1.1;
      proxy_set_header Host \$host;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr;
    }
  }
}
NGINX
}
