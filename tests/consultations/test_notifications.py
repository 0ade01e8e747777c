"""Who is told what: new requests reach the right specialists, answers reach the clinician, overdue ones
reach the central hospital's admins; in the reader's language; the count is live."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from consultations import services, tasks
from consultations.models import Consultation
from hospitals.models import Notification, Specialty, Staff, User
from patients.models import Consent
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make


@pytest.fixture
def people(network_a: Network) -> dict[str, User]:
    cardiology = Specialty.objects.get_or_create(code="cardiology", defaults={"name_en": "C", "name_ru": "К"})[0]
    cardiologist = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST)
    cardiologist.specialties.add(cardiology)
    return {
        "clinician": StaffFactory(hospital=network_a.regional).user,
        "cardiologist": cardiologist.user,
        "radiologist": StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user,
        "moscow_admin": StaffFactory(hospital=network_a.central, role=Staff.Role.HOSPITAL_ADMIN).user,
    }


def _texts(user: User) -> list[str]:
    return [n.text for n in Notification.objects.filter(user=user)]


def test_a_request_notifies_the_specialists_of_its_specialty_and_the_answer_the_clinician(
    people: dict[str, User], network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    Consent.objects.create(patient=patient, telemedicine=True, data_sharing=True, recorded_by=people["clinician"])
    consultation = services.consultation_create(
        patient=patient,
        by=people["clinician"],
        specialty=Specialty.objects.get(code="cardiology"),
        urgency="emergency",
        question="STEMI?",
        condition="pain",
    )
    assert _texts(people["cardiologist"]) == [f"New emergency consultation request #{consultation.pk}"]
    assert _texts(people["radiologist"]) == []  # not their specialty

    services.consultation_move(consultation=consultation, move="accept", by=people["cardiologist"])
    assert _texts(people["clinician"]) == [f"Consultation #{consultation.pk} was accepted"]

    client = login(people["clinician"])
    page = client.get("/").content.decode()
    assert 'id="unread-count" class="badge bad">1<' in page
    settings.LANGUAGE_CODE = "ru"
    assert f"Консультация #{consultation.pk}" in client.get("/notifications/").content.decode()
    client.post("/notifications/read/")
    assert not Notification.objects.filter(user=people["clinician"], read_at__isnull=True).exists()


def test_the_beat_task_marks_overdue_requests_once_and_tells_the_central_admins(
    people: dict[str, User], network_a: Network
) -> None:
    late = consultation_make(
        PatientFactory(hospital=network_a.regional), deadline=timezone.now() - timedelta(minutes=1)
    )
    on_time = consultation_make(PatientFactory(hospital=network_a.regional))
    assert "consultations.tasks.consultations_mark_overdue" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert tasks.consultations_mark_overdue.apply().get() == 1
    assert tasks.consultations_mark_overdue.apply().get() == 0  # safe to run again
    late.refresh_from_db()
    on_time.refresh_from_db()
    assert late.overdue_at is not None and on_time.overdue_at is None
    assert _texts(people["moscow_admin"]) == [f"Consultation #{late.pk} is overdue"]
    assert Consultation.objects.get(pk=late.pk).state == "requested"  # still open: overdue is a flag, not a state
