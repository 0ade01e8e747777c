"""QIDO-RS study search with 100,000 instances indexed (issue 4): p50/p95 per query, 127.0.0.1 only.

    bash bench/qido_bench.sh

Seeds (once) 5,000 studies x 4 series x 5 instances as index rows of the bench database's first regional
hospital (no files: QIDO reads only the index), then times the searches OHIF's study list makes.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from diagnostics.models import Instance, Series, Study  # noqa: E402
from hospitals.models import User  # noqa: E402
from patients.models import Patient  # noqa: E402

STUDIES, SERIES, INSTANCES = 5000, 4, 5
MODALITIES = ["CT", "US", "CR", "DX", "MR"]
QUERIES = {
    "study list, first page": "limit=25&offset=0&includefield=all",
    "patient name prefix": "PatientName=Иван*&limit=25",
    "patient ID": "PatientID={record}",
    "date range, one month": "StudyDate=20240301-20240331&limit=25",
    "modality": "ModalitiesInStudy=US&limit=25",
    "page 40": "limit=25&offset=1000",
}


@transaction.atomic
def seed(hospital_id: int) -> None:
    patients = list(Patient.objects.filter(hospital_id=hospital_id).values_list("pk", flat=True)[:STUDIES])
    studies = Study.objects.bulk_create(
        [
            Study(
                hospital_id=hospital_id,
                patient_id=patients[n % len(patients)],
                study_instance_uid=generate_uid(),
                study_date=date(2024, 1, 1) + timedelta(days=n % 700),
                description="Bench study",
                modalities=MODALITIES[n % len(MODALITIES)],
            )
            for n in range(STUDIES)
        ],
        batch_size=2000,
    )
    series = Series.objects.bulk_create(
        [
            Series(study=study, series_instance_uid=generate_uid(), modality=study.modalities, number=k + 1)
            for study in studies
            for k in range(SERIES)
        ],
        batch_size=5000,
    )
    Instance.objects.bulk_create(
        [
            Instance(
                series=one,
                hospital_id=hospital_id,
                sop_instance_uid=generate_uid(),
                sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                number=k + 1,
                rows=512,
                columns=512,
                transfer_syntax_uid="1.2.840.10008.1.2.1",
                sha256="0" * 64,
                file="dicom/none.dcm",
                size=0,
                source="stow",
                status="ready",
            )
            for one in series
            for k in range(INSTANCES)
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8078")
    parser.add_argument("--token", required=True)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    hospital_id = User.objects.get(username="bench.clinician").staff.hospital_id
    if Instance.objects.filter(hospital_id=hospital_id).count() < STUDIES * SERIES * INSTANCES:
        started = time.perf_counter()
        seed(hospital_id)
        print(f"seeded {STUDIES * SERIES * INSTANCES} instances in {time.perf_counter() - started:.0f} s")
    print(f"instances indexed: {Instance.objects.count()}")
    record = Patient.objects.filter(hospital_id=hospital_id).order_by("pk").values_list("record_number", flat=True)[0]
    session = requests.Session()
    session.headers["Authorization"] = f"Token {args.token}"
    session.headers["Accept"] = "application/dicom+json"
    results = {}
    for label, query in QUERIES.items():
        url = f"{args.url}/dicom-web/studies?{query.format(record=record)}"
        response = session.get(url, timeout=30)
        assert response.status_code in (200, 204), (label, response.status_code, response.text[:300])
        found = len(response.json()) if response.status_code == 200 else 0
        timings = []
        for _ in range(args.requests):
            started = time.perf_counter()
            session.get(url, timeout=30).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        results[label] = {
            "found": found,
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
        }
        print(
            f"{label:28} {found:3} studies  p50 {results[label]['p50_ms']:6.1f} ms  p95 {results[label]['p95_ms']:6.1f} ms"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
