"""The consultation workflow end to end through the pages, its state machine, and who sees what."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from consultations import services
from consultations.models import Conclusion, Consultation, Transition
from hospitals.models import AuditEntry, Specialty, Staff, User
from patients.models import Consent, Patient
from tests.conftest import Network, PatientFactory, StaffFactory, consultation_make, need

State = Consultation.State


@pytest.fixture
def cardiology(db) -> Specialty:  # type: ignore[no-untyped-def]
    return Specialty.objects.get_or_create(code="cardiology", defaults={"name_en": "Cardiology", "name_ru": "К"})[0]


@pytest.fixture
def tula_clinician(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user


@pytest.fixture
def moscow_cardiologist(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user


def _consented(patient: Patient, by: User) -> Patient:
    Consent.objects.create(patient=patient, telemedicine=True, data_sharing=True, recorded_by=by)
    return patient


def _request_form(patient: Patient, specialty: Specialty, **overrides: str) -> dict[str, object]:
    return {
        "patient": patient.pk,
        "urgency": "urgent",
        "specialty": specialty.pk,
        "question": "Chest pain for three hours. Acute coronary syndrome?",
        "condition": "BP 150/90, HR 96, troponin pending",
        **overrides,
    }


def test_a_clinician_requests_an_urgent_consultation_with_a_deadline(
    tula_clinician: User, network_a: Network, cardiology: Specialty, login
) -> None:  # type: ignore[no-untyped-def]
    patient = _consented(PatientFactory(hospital=network_a.regional), tula_clinician)
    before = timezone.now()
    response = login(tula_clinician).post("/consultations/new/", _request_form(patient, cardiology))
    consultation = Consultation.objects.get()
    assert response["Location"] == f"/consultations/{consultation.pk}/"
    assert consultation.state == State.REQUESTED and consultation.consulted_hospital == network_a.central
    assert timedelta(hours=24) <= consultation.deadline - before < timedelta(hours=24, minutes=1)
    assert list(consultation.transitions.values_list("from_state", "to_state")) == [("draft", "requested")]
    assert AuditEntry.objects.filter(object_type="consultations.consultation", action="create").count() == 1


def test_no_consultation_without_consent_and_nothing_half_saved(
    tula_clinician: User, network_a: Network, cardiology: Specialty, login
) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    response = login(tula_clinician).post("/consultations/new/", _request_form(patient, cardiology))
    assert response.status_code == 400
    assert "Record the patient&#x27;s consent" in response.content.decode()
    assert not Consultation.objects.exists() and not Transition.objects.exists()
    assert AuditEntry.objects.filter(action="create", outcome="invalid").count() == 1


def test_a_specialist_sees_the_patient_only_through_a_consultation_and_loses_it_on_cancel(
    tula_clinician: User, moscow_cardiologist: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    specialist = login(moscow_cardiologist)
    assert specialist.get(f"/patients/{patient.pk}/").status_code == 404

    consultation = consultation_make(patient, requested_by=tula_clinician)
    assert specialist.get(f"/patients/{patient.pk}/").status_code == 200
    assert specialist.get(f"/consultations/{consultation.pk}/").status_code == 200

    login(tula_clinician).post(f"/consultations/{consultation.pk}/cancel/")
    assert Consultation.objects.get().state == State.CANCELLED
    assert specialist.get(f"/patients/{patient.pk}/").status_code == 404
    assert specialist.get(f"/consultations/{consultation.pk}/").status_code == 404


def test_another_hospitals_specialist_and_clinician_see_nothing(
    network_a: Network, network_b: Network, tula_clinician: User, login
) -> None:  # type: ignore[no-untyped-def]
    consultation = consultation_make(PatientFactory(hospital=network_a.regional), requested_by=tula_clinician)
    kazan = StaffFactory(hospital=network_b.central, role=Staff.Role.SPECIALIST).user
    kostroma = StaffFactory(hospital=network_b.regional).user
    for outsider in (kazan, kostroma):
        client = login(outsider)
        assert client.get(f"/consultations/{consultation.pk}/").status_code == 404
        assert client.post(f"/consultations/{consultation.pk}/messages/", {"body": "hello"}).status_code == 404
        assert "Chest pain" not in client.get("/consultations/").content.decode()
    assert not consultation.messages.exists()


# Every (state, move) pair: what the page answers, for the side that pressed the button.
MOVES = ["request", "accept", "decline", "ask-info", "answer", "cancel"]
ALLOWED_PAIRS = {
    ("draft", "request"): ("clinician", "requested"),
    ("draft", "cancel"): ("clinician", "cancelled"),
    ("requested", "accept"): ("specialist", "accepted"),
    ("requested", "decline"): ("specialist", "declined"),
    ("requested", "cancel"): ("clinician", "cancelled"),
    ("accepted", "ask-info"): ("specialist", "info_requested"),
    ("accepted", "decline"): ("specialist", "declined"),
    ("accepted", "cancel"): ("clinician", "cancelled"),
    ("info_requested", "answer"): ("clinician", "accepted"),
    ("info_requested", "cancel"): ("clinician", "cancelled"),
}


@pytest.mark.parametrize("move", MOVES)
@pytest.mark.parametrize("state", State.values)
def test_the_state_machine_allows_only_its_moves(
    state: str, move: str, tula_clinician: User, moscow_cardiologist: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    patient = _consented(PatientFactory(hospital=network_a.regional), tula_clinician)
    assigned = moscow_cardiologist if state in ("accepted", "info_requested", "concluded") else None
    consultation = consultation_make(patient, state=state, requested_by=tula_clinician, assigned_to=assigned)
    expected = ALLOWED_PAIRS.get((state, move))
    for role, user in (("clinician", tula_clinician), ("specialist", moscow_cardiologist)):
        if state in ("draft", "cancelled") and role == "specialist":
            continue  # the consulted hospital never sees drafts or cancelled requests (a 404, tested above)
        response = login(user).post(f"/consultations/{consultation.pk}/{move}/", {"note": "details please"})
        consultation.refresh_from_db()
        if expected is not None and expected[0] == role:
            assert response.status_code == 302, (role, response.status_code)
            assert consultation.state == expected[1]
            return
        assert response.status_code == 409
        assert consultation.state == state
    assert AuditEntry.objects.filter(outcome="denied").exists()


def test_decline_needs_a_reason(tula_clinician: User, moscow_cardiologist: User, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    consultation = consultation_make(PatientFactory(hospital=network_a.regional), requested_by=tula_clinician)
    response = login(moscow_cardiologist).post(f"/consultations/{consultation.pk}/decline/", {"note": " "})
    assert response.status_code == 409 and "Say why the request is declined" in response.content.decode()
    consultation.refresh_from_db()
    assert consultation.state == State.REQUESTED


def test_the_second_of_two_accepts_is_told_who_took_it(
    tula_clinician: User, moscow_cardiologist: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    other = StaffFactory(
        hospital=network_a.central, role=Staff.Role.SPECIALIST, user__first_name="Анна", user__last_name="Соколова"
    ).user
    consultation = consultation_make(PatientFactory(hospital=network_a.regional), requested_by=tula_clinician)
    assert login(other).post(f"/consultations/{consultation.pk}/accept/").status_code == 302
    response = login(moscow_cardiologist).post(f"/consultations/{consultation.pk}/accept/")
    assert response.status_code == 409
    assert "Анна Соколова has already accepted this request." in response.content.decode()
    consultation.refresh_from_db()
    assert consultation.assigned_to == other


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_accepts_leave_one_owner_on_postgresql(network_a: Network) -> None:
    need("PostgreSQL (DATABASE_URL)", connection.vendor == "postgresql")
    consultation = consultation_make(PatientFactory(hospital=network_a.regional))
    specialists = [StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user for _ in range(2)]
    start, results = threading.Barrier(2), []

    def accept(user: User) -> None:
        start.wait()
        try:
            services.consultation_move(consultation=consultation, move="accept", by=user)
            results.append("won")
        except services.ConsultationRefused as refusal:
            results.append(str(refusal))
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(user,)) for user in specialists]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results)[-1] == "won" and results.count("won") == 1
    assert "has already accepted this request" in next(r for r in results if r != "won")
    consultation.refresh_from_db()
    assert consultation.assigned_to in specialists
    assert consultation.transitions.filter(to_state="accepted").count() == 1


def _code(user: User) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0):06d}"


def _conclusion(**overrides: object) -> dict[str, object]:
    return {
        "findings": "ST elevation in II, III, aVF; troponin I 2.4 ng/mL.",
        "diagnosis": "I21.1",
        "diagnosis_text": "Острый нижний инфаркт миокарда",
        "recommendation": "transfer",
        "plan": "Transfer to the central hospital for PCI today.",
        "follow_up": "",
        **overrides,
    }


def test_signing_asks_for_the_code_again_and_a_correction_keeps_the_first_version(
    tula_clinician: User, moscow_cardiologist: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    consultation = consultation_make(
        PatientFactory(hospital=network_a.regional), state="accepted", assigned_to=moscow_cardiologist
    )
    client = login(moscow_cardiologist)
    url = f"/consultations/{consultation.pk}/conclusion/"
    wrong = client.post(url, {**_conclusion(), "token": "000000"})
    assert wrong.status_code == 400 and "the conclusion is not signed" in wrong.content.decode()
    assert not Conclusion.objects.exists()

    TOTPDevice.objects.filter(user=moscow_cardiologist).update(
        throttling_failure_timestamp=None, throttling_failure_count=0
    )
    assert client.post(url, {**_conclusion(), "token": _code(moscow_cardiologist)}).status_code == 302
    consultation.refresh_from_db()
    assert consultation.state == State.CONCLUDED

    TOTPDevice.objects.filter(user=moscow_cardiologist).update(last_t=-1)  # the next 30-second window
    correction = _conclusion(diagnosis="I21.4", diagnosis_text="Субэндокардиальный инфаркт миокарда")
    assert client.post(url, {**correction, "token": _code(moscow_cardiologist)}).status_code == 302
    assert list(consultation.conclusions.values_list("version", "diagnosis_id")) == [(2, "I21.4"), (1, "I21.1")]

    page = login(tula_clinician).get(f"/consultations/{consultation.pk}/").content.decode()
    assert "Субэндокардиальный инфаркт миокарда" in page and "replaced by a correction" in page

    first = Conclusion.objects.get(version=1)
    first.plan = "edited after signing"
    with pytest.raises(PermissionError):
        first.save()
    assert Conclusion.objects.get(version=1).plan.startswith("Transfer")


def test_the_diagnosis_is_typed_with_suggestions_and_an_unknown_code_is_explained(
    moscow_cardiologist: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    consultation = consultation_make(
        PatientFactory(hospital=network_a.regional), state="accepted", assigned_to=moscow_cardiologist
    )
    client = login(moscow_cardiologist)
    page = client.get(f"/consultations/{consultation.pk}/").content.decode()
    assert 'list="diagnosis-codes"' in page and '<option value="I21.1">I21.1 ' in page

    url = f"/consultations/{consultation.pk}/conclusion/"
    unknown = client.post(url, {**_conclusion(diagnosis="X99.9"), "token": _code(moscow_cardiologist)})
    assert unknown.status_code == 400 and "There is no ICD-10 code “X99.9” in the list" in unknown.content.decode()
    assert not Conclusion.objects.exists()

    TOTPDevice.objects.filter(user=moscow_cardiologist).update(last_t=-1)
    picked = _conclusion(diagnosis="i21.1 Acute transmural myocardial infarction of inferior wall")
    assert client.post(url, {**picked, "token": _code(moscow_cardiologist)}).status_code == 302
    assert Conclusion.objects.get().diagnosis_id == "I21.1"


def test_only_the_accepting_specialist_signs(
    tula_clinician: User, moscow_cardiologist: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    consultation = consultation_make(
        PatientFactory(hospital=network_a.regional), state="accepted", assigned_to=moscow_cardiologist
    )
    colleague = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user
    client = login(colleague)
    response = client.post(
        f"/consultations/{consultation.pk}/conclusion/", {**_conclusion(), "token": _code(colleague)}
    )
    assert response.status_code == 409
    assert "Only the specialist who accepted the request signs" in response.content.decode()
    assert not Conclusion.objects.exists()


def test_an_executable_attachment_and_a_2gb_upload_are_refused(tula_clinician: User, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    consultation = consultation_make(PatientFactory(hospital=network_a.regional), requested_by=tula_clinician)
    client = login(tula_clinician)
    fake = SimpleUploadedFile("ecg.pdf", b"MZ\x90\x00This program cannot be run in DOS mode")
    response = client.post(f"/consultations/{consultation.pk}/messages/", {"body": "ECG", "attachment": fake})
    assert response.status_code == 400 and "not a PDF, JPEG or PNG" in response.content.decode()

    huge = client.post(
        f"/consultations/{consultation.pk}/messages/",
        data=b"x",
        content_type="application/octet-stream",
        CONTENT_LENGTH=str(2 * 2**30),
    )
    assert huge.status_code == 413 and "The upload is 2048 MB; the limit is 25 MB." in huge.content.decode()
    assert not consultation.messages.exists()
    assert AuditEntry.objects.filter(object_type="upload", outcome="invalid").count() == 1


def test_the_worklist_puts_emergencies_first_then_the_least_time_left(
    moscow_cardiologist: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    planned = consultation_make(
        PatientFactory(hospital=network_a.regional, family_name="Планова"),
        urgency="planned",
        deadline=now + timedelta(hours=1),
    )
    urgent_late = consultation_make(
        PatientFactory(hospital=network_a.regional, family_name="Позднова"), deadline=now + timedelta(hours=20)
    )
    urgent_soon = consultation_make(
        PatientFactory(hospital=network_a.regional, family_name="Срочнова"), deadline=now + timedelta(hours=2)
    )
    emergency = consultation_make(
        PatientFactory(hospital=network_a.regional, family_name="Экстренная"),
        urgency="emergency",
        deadline=now - timedelta(minutes=5),
    )
    page = login(moscow_cardiologist).get("/consultations/").content.decode()
    order = [page.index(name) for name in ("Экстренная", "Срочнова", "Позднова", "Планова")]
    assert order == sorted(order)
    assert page.count('class="overdue"') == 1  # the emergency is past its deadline
    assert {planned.pk, urgent_late.pk, urgent_soon.pk, emergency.pk} == set(
        Consultation.objects.values_list("pk", flat=True)
    )


def test_the_worklist_costs_the_same_queries_for_more_rows(
    moscow_cardiologist: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    client = login(moscow_cardiologist)
    for _ in range(3):
        consultation_make(PatientFactory(hospital=network_a.regional))

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/consultations/").status_code == 200
        return len(captured)

    count()
    few = count()
    for _ in range(20):
        consultation_make(PatientFactory(hospital=network_a.regional))
    assert count() == few


def test_the_clinician_downloads_the_signed_conclusion_as_a_pdf_in_cyrillic(
    tula_clinician: User, moscow_cardiologist: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    import io

    from pypdf import PdfReader

    from consultations.models import Icd10Code

    patient = PatientFactory(hospital=network_a.regional, family_name="Ёлкина", given_name="Анна")
    consultation = consultation_make(patient, state="accepted", assigned_to=moscow_cardiologist)
    services.conclusion_sign(
        consultation=consultation,
        by=moscow_cardiologist,
        findings="Подъём ST в II, III, aVF.",
        diagnosis=Icd10Code.objects.get(code="I21.1"),
        diagnosis_text="Острый нижний инфаркт миокарда",
        recommendation="transfer",
        plan="Перевод в центральную больницу сегодня.",
        follow_up=None,
    )
    client = login(tula_clinician)
    assert (
        f"/consultations/{consultation.pk}/conclusion/1.pdf"
        in client.get(f"/consultations/{consultation.pk}/").content.decode()
    )
    response = client.get(f"/consultations/{consultation.pk}/conclusion/1.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "Ёлкина Анна" in text and "Острый нижний инфаркт миокарда" in text and "I21.1" in text
    assert AuditEntry.objects.filter(action="export", patient_id=str(patient.pk)).count() == 1
    assert client.get(f"/consultations/{consultation.pk}/conclusion/2.pdf").status_code == 404
