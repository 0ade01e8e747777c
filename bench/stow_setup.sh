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

# orthanc_config FILE HTTP_PORT DICOM_PORT DIRECTORY: Orthanc with its DICOMweb plugin on 127.0.0.1.
orthanc_config() {
  cat > "$1" <<JSON
{ "Name": "bench", "StorageDirectory": "$4", "IndexDirectory": "$4",
  "HttpPort": $2, "DicomPort": $3, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"], "DicomWeb": { "Enable": true, "Root": "/dicom-web/" } }
JSON
}
