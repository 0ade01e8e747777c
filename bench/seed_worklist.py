"""Seed a benchmark database: 100,000 patients and 20,000 open consultations, plus signed-in sessions.

    createdb -h 127.0.0.1 -U postgres mhospital_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhospital_bench .venv/bin/python bench/seed_worklist.py

Migrates, seeds (once; run again to reuse), and writes bench/.sessions.json with a verified central
specialist's and a regional clinician's session cookies for bench/locustfile.py. Never run it against a
real database: it adds made-up people.
"""

import json
import os
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_otp import DEVICE_ID_SESSION_KEY  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from consultations.models import URGENCY_RANK, Consultation, Urgency  # noqa: E402
from hospitals.models import Hospital, Specialty, Staff, User  # noqa: E402
from patients.models import Consent, Patient  # noqa: E402
from patients.validators import normalize_name  # noqa: E402

PATIENTS, CONSULTATIONS, REGIONAL = 100_000, 20_000, 10
FAMILY = [
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
]
GIVEN = [
    "Александр",
    "Сергей",
    "Дмитрий",
    "Андрей",
    "Алексей",
    "Иван",
    "Михаил",
    "Ольга",
    "Елена",
    "Анна",
    "Мария",
    "Наталья",
    "Татьяна",
    "Ирина",
    "Светлана",
]
PATRONYMIC = [
    "Александрович",
    "Сергеевич",
    "Иванович",
    "Петрович",
    "Михайлович",
    "Алексеевна",
    "Сергеевна",
    "Ивановна",
    "Петровна",
    "Николаевна",
]
OUT = Path(__file__).resolve().parent / ".sessions.json"


def main() -> None:
    if connection.vendor != "postgresql" or not settings.DATABASES["default"]["NAME"].endswith("_bench"):
        sys.exit("Point DATABASE_URL at a PostgreSQL database whose name ends in _bench.")
    call_command("migrate", verbosity=0)
    random.seed(965)
    if not Patient.objects.exists():
        started = time.perf_counter()
        seed()
        print(f"seeded in {time.perf_counter() - started:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    OUT.write_text(
        json.dumps({"specialist": session_for("bench.specialist"), "clinician": session_for("bench.clinician")})
    )
    print(
        f"{Patient.objects.count()} patients, {Consultation.objects.filter(state='requested').count()} open; sessions in {OUT}"
    )


@transaction.atomic
def seed() -> None:
    moscow = Hospital.objects.create(name="Bench Central", kind="central", region="Moscow")
    regionals = [
        Hospital.objects.create(name=f"Bench Regional {n}", kind="regional", region="R", central_hospital=moscow)
        for n in range(REGIONAL)
    ]
    cardiology, _ = Specialty.objects.get_or_create(
        code="cardiology", defaults={"name_en": "Cardiology", "name_ru": "К"}
    )
    specialist = User.objects.create_user("bench.specialist", password="unused-bench-password")
    Staff.objects.create(user=specialist, hospital=moscow, role=Staff.Role.SPECIALIST).specialties.add(cardiology)
    TOTPDevice.objects.create(user=specialist, name="bench", confirmed=True)
    clinician = User.objects.create_user("bench.clinician", password="unused-bench-password")
    Staff.objects.create(user=clinician, hospital=regionals[0], role=Staff.Role.CLINICIAN)

    patients = []
    for n in range(PATIENTS):
        family, given, patronymic = random.choice(FAMILY), random.choice(GIVEN), random.choice(PATRONYMIC)
        patients.append(
            Patient(
                hospital=regionals[n % REGIONAL],
                record_number=f"B-{n:07d}",
                family_name=family,
                given_name=given,
                patronymic=patronymic,
                sex="male",
                birth_date=date(1940, 1, 1) + timedelta(days=random.randrange(25000)),
                search_name=normalize_name(family, given, patronymic),
            )
        )
    Patient.objects.bulk_create(patients, batch_size=5000)
    chosen = random.sample(list(Patient.objects.values_list("pk", "hospital_id")), CONSULTATIONS)
    Consent.objects.bulk_create(
        [Consent(patient_id=pk, telemedicine=True, data_sharing=True, recorded_by=clinician) for pk, _ in chosen],
        batch_size=5000,
    )
    now = timezone.now()
    Consultation.objects.bulk_create(
        [
            Consultation(
                patient_id=pk,
                requesting_hospital_id=hospital_id,
                consulted_hospital=moscow,
                requested_by=clinician,
                specialty=cardiology,
                urgency=(urgency := random.choice(Urgency.values)),
                question="Chest pain?",
                priority=URGENCY_RANK[Urgency(urgency)],
                condition="Stable",
                state="requested",
                requested_at=now,
                deadline=now + timedelta(minutes=random.randrange(-600, 10000)),
            )
            for pk, hospital_id in chosen
        ],
        batch_size=5000,
    )


def session_for(username: str) -> str:
    user = User.objects.get(username=username)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    store.set_expiry(24 * 3600)
    store.create()
    return str(store.session_key)


if __name__ == "__main__":
    main()
