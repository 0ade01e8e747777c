"""FHIR Observation search for one patient with 10,000 lab results: p95 for a page of 50, without and with
an index on (patient, -observed_at, -id) that serves the search's order.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhospital .venv/bin/python bench/fhir_bench.py [--requests N]

In process through Django's test client with an API token (auth, scoping, search, audit of the 50 rows,
JSON). Prints one Markdown table row per figure. Uses a scratch database of its own, dropped at the end.
"""

import argparse
import datetime
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

INDEX = "observation_patient_time_bench"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--observations", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL server: the target is for PostgreSQL.")
    connection.settings_dict["TEST"]["NAME"] = "mh_fhir2_bench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    settings.ALLOWED_HOSTS = ["testserver"]
    try:
        run(args.observations, args.requests)
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def seed(count: int) -> tuple[str, int]:
    from knox.models import AuthToken

    from diagnostics.lab_reference import lab_reference_load
    from diagnostics.models import LabMessage, LabTest, Observation
    from hospitals.models import Hospital, Staff, User
    from patients.models import Patient

    lab_reference_load()
    hospital = Hospital.objects.create(
        name="Tula", kind=Hospital.Kind.REGIONAL, region="Tula", time_zone="Europe/Moscow"
    )
    user = User.objects.create(username="clinician")
    Staff.objects.create(user=user, hospital=hospital, role=Staff.Role.CLINICIAN)
    patients = [
        Patient.objects.create(
            hospital=hospital,
            record_number=f"MR-{n}",
            family_name=f"Petrov{n}",
            given_name="Ivan",
            sex="male",
            birth_date=datetime.date(1960, 1, 1),
        )
        for n in range(5)
    ]
    tests = list(LabTest.objects.all()[:10])
    message = LabMessage.objects.create(
        hospital=hospital, source="fhir", sender="device:1", control_id="bench", raw="{}"
    )
    now = timezone.now()
    rows = []
    # The patient measured, and four others with as many results each (the table the index must cut through).
    for patient in patients:
        for n in range(count):
            test = tests[n % len(tests)]
            rows.append(
                Observation(
                    hospital=hospital,
                    patient=patient,
                    message=message,
                    test=test,
                    record_number=patient.record_number,
                    code_sent=test.loinc,
                    value_sent="5.4",
                    value=Decimal("5.4"),
                    unit=test.unit,
                    low=Decimal("3.9"),
                    high=Decimal("6.1"),
                    flag="normal",
                    observed_at=now - datetime.timedelta(minutes=n),
                    key=f"{patient.pk}-{n}",
                )
            )
    Observation.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE diagnostics_observation")
    return AuthToken.objects.create(user)[1], patients[0].pk


def measure(client: Client, token: str, patient: int, requests: int, page: int) -> list[float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(
            "/fhir/Observation", {"patient": patient, "_count": 50, "_page": page}, HTTP_AUTHORIZATION=f"Token {token}"
        )
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and len(response.json()["entry"]) == 50, response.content[:300]
    return times


def row(label: str, times: list[float]) -> str:
    p95 = statistics.quantiles(times, n=20)[18]
    return f"| {label} | {len(times)} | {statistics.median(times):.1f} ms | {p95:.1f} ms |"


def run(count: int, requests: int) -> None:
    token, patient = seed(count)
    client = Client()
    measure(client, token, patient, 20, 1)  # warm-up
    print(f"5 patients × {count} observations; GET /fhir/Observation?patient=…&_count=50")
    print("| variant | requests | p50 | p95 |")
    print("|---|---|---|---|")
    for page in (1, 100):
        print(row(f"page {page}, existing indexes", measure(client, token, patient, requests, page)), flush=True)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX {INDEX} ON diagnostics_observation (patient_id, observed_at DESC, id DESC)")
        cursor.execute("ANALYZE diagnostics_observation")
    for page in (1, 100):
        print(row(f"page {page}, with (patient, -observed_at, -id)", measure(client, token, patient, requests, page)))
    settings.FHIR_VALIDATE_RESPONSES = True
    print(row("page 1, with the index, FHIR_VALIDATE_RESPONSES on", measure(client, token, patient, requests, 1)))


if __name__ == "__main__":
    main()
