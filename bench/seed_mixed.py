"""Seed for the mixed load (bench/mixed_load.sh): on top of bench/seed_worklist.py's database, a lab
analyser with a device token and the ids the load's users pick from. Writes bench/.mixed.json.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhospital_bench .venv/bin/python bench/seed_mixed.py
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")

import django

django.setup()

from consultations.models import Consultation  # noqa: E402
from devices.models import Device  # noqa: E402
from devices.services import device_token_issue  # noqa: E402
from diagnostics.lab_reference import lab_reference_load  # noqa: E402
from hospitals.models import User  # noqa: E402
from patients.models import Patient  # noqa: E402

OUT = Path(__file__).resolve().parent / ".mixed.json"


def main() -> None:
    clinician = User.objects.get(username="bench.clinician")
    specialist = User.objects.get(username="bench.specialist")
    hospital = clinician.staff.hospital
    lab_reference_load()
    device, _ = Device.objects.get_or_create(
        hospital=hospital, name="Bench analyser", defaults={"kind": Device.Kind.LAB_ANALYSER, "serial": "BENCH-1"}
    )
    _, token = device_token_issue(device=device, by=clinician)
    patients = list(Patient.objects.filter(hospital=hospital).order_by("pk").values_list("pk", "record_number")[:500])
    consultations = list(
        Consultation.objects.filter(consulted_hospital=specialist.staff.hospital, state="requested")
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    OUT.write_text(
        json.dumps({"device_token": token, "patients": patients, "consultations": consultations}, ensure_ascii=False)
    )
    print(f"{len(patients)} patients, {len(consultations)} consultations, a device token; in {OUT}")


if __name__ == "__main__":
    main()
