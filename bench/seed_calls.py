"""Seed N consultations ready for a call, each with its own clinician and specialist (second factor
confirmed), and print one signed-in session per person as JSON: [[consultation, specialist cookie,
clinician cookie], ...]. Idempotent: a second run reuses the rows and issues fresh sessions.

    manage.py shell --no-imports -c "import bench.seed_calls as s; s.main(500)" > calls.json
"""

import datetime
import json
import sys

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.utils import timezone
from django.utils.module_loading import import_string
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from consultations.models import Consultation
from hospitals.models import Hospital, Specialty, Staff, User
from patients.models import Patient

PREFIX = "bench.call"


def _hospitals() -> tuple[Hospital, Hospital]:
    central, _ = Hospital.objects.get_or_create(
        name="Bench Central Hospital",
        defaults={"kind": Hospital.Kind.CENTRAL, "region": "Moscow", "time_zone": "Europe/Moscow"},
    )
    regional, _ = Hospital.objects.get_or_create(
        name="Bench Regional Hospital",
        defaults={
            "kind": Hospital.Kind.REGIONAL,
            "region": "Tula Oblast",
            "time_zone": "Europe/Moscow",
            "central_hospital": central,
        },
    )
    return central, regional


def _people(role: str, hospital: Hospital, n: int) -> list[User]:
    names = [f"{PREFIX}.{role}.{i}" for i in range(n)]
    have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    new = [User(username=u, first_name="Bench", last_name=u, password="!unusable") for u in names if u not in have]
    User.objects.bulk_create(new)
    users = {u.username: u for u in User.objects.filter(username__in=names)}
    Staff.objects.bulk_create(
        [Staff(user=users[u.username], hospital=hospital, role=role) for u in new], ignore_conflicts=True
    )
    return [users[name] for name in names]


def main(n: int) -> None:
    central, regional = _hospitals()
    specialists = _people(Staff.Role.SPECIALIST, central, n)
    clinicians = _people(Staff.Role.CLINICIAN, regional, n)
    devices = {d.user_id: d for d in TOTPDevice.objects.filter(user__in=specialists, confirmed=True)}
    TOTPDevice.objects.bulk_create(
        [TOTPDevice(user=u, name="phone", confirmed=True) for u in specialists if u.pk not in devices]
    )
    devices = {d.user_id: d for d in TOTPDevice.objects.filter(user__in=specialists, confirmed=True)}
    specialty, _ = Specialty.objects.get_or_create(
        code="cardiology", defaults={"name_en": "Cardiology", "name_ru": "Кардиология"}
    )
    records = [f"BENCH-CALL-{i:05d}" for i in range(n)]
    have = set(
        Patient.objects.filter(hospital=regional, record_number__in=records).values_list("record_number", flat=True)
    )
    Patient.objects.bulk_create(
        [
            Patient(
                hospital=regional,
                record_number=r,
                family_name="Петров",
                given_name="Иван",
                patronymic="Сергеевич",
                sex="male",
                birth_date=datetime.date(1961, 3, 12),
            )
            for r in records
            if r not in have
        ]
    )
    patients = {p.record_number: p for p in Patient.objects.filter(hospital=regional, record_number__in=records)}
    now = timezone.now()
    consultations = []
    for i, record in enumerate(records):
        consultation = Consultation.objects.filter(patient=patients[record]).first()
        if consultation is None:
            consultation = Consultation.objects.create(
                patient=patients[record],
                requesting_hospital=regional,
                consulted_hospital=central,
                requested_by=clinicians[i],
                assigned_to=specialists[i],
                specialty=specialty,
                urgency="urgent",
                question="Chest pain for 3 hours, ST elevation?",
                condition="BP 150/90, HR 96",
                state="accepted",
                requested_at=now,
                deadline=now + datetime.timedelta(hours=24),
            )
        consultations.append(consultation)
    # Calls a previous run left ringing or active would refuse a new invite.
    from consultations.models import Call

    Call.objects.filter(consultation__in=consultations, state__in=["ringing", "active"]).update(
        state="ended", ended_at=now
    )
    store = import_string(settings.SESSION_ENGINE + ".SessionStore")

    def cookie(user: User, device: TOTPDevice | None) -> str:
        session = store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        if device is not None:
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.create()
        return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"

    out = [
        [c.pk, cookie(specialists[i], devices[specialists[i].pk]), cookie(clinicians[i], None)]
        for i, c in enumerate(consultations)
    ]
    json.dump(out, sys.stdout)
