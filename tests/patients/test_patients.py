"""The patient registry as a clinician meets it: register, find, correct, record consent; and who sees whom."""

from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hospitals.models import AuditEntry, Hospital, Staff, User
from patients.models import Consent, Patient
from patients.validators import snils_checksum, validate_snils
from tests.conftest import Network, PatientFactory, StaffFactory

VALID_SNILS = "112-233-445 95"


@pytest.fixture
def tula_clinician(network_a: Network) -> User:
    return StaffFactory(hospital=network_a.regional, role=Staff.Role.CLINICIAN).user


def _new_patient(**overrides: object) -> dict[str, object]:
    return {
        "record_number": "TUL-2026-0042",
        "family_name": "Ёлкина",
        "given_name": "Анна",
        "patronymic": "Петровна",
        "sex": "female",
        "birth_date": "1958-07-21",
        "snils": VALID_SNILS,
        "oms_policy": "7700000000000000",
        "phone": "+7 910 000-00-00",
        "address": "Тула, ул. Советская, 1",
        "notes": "",
        **overrides,
    }


def test_snils_check_digits_follow_the_pension_fund_rule() -> None:
    assert snils_checksum("112233445") == 95
    validate_snils("11223344595")
    with pytest.raises(Exception, match="check digits"):
        validate_snils("11223344596")
    validate_snils("00100199800")  # issued before check digits existed: any control number


def test_a_clinician_registers_a_patient_and_opens_the_page(tula_clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_clinician)
    response = client.post("/patients/new/", _new_patient())
    patient = Patient.objects.get(record_number="TUL-2026-0042")
    assert response["Location"] == f"/patients/{patient.pk}/"
    assert patient.snils == "11223344595" and patient.hospital == tula_clinician.staff.hospital
    page = client.get(response["Location"]).content.decode()
    assert "Ёлкина Анна Петровна" in page and "112-233-445 95" in page
    assert "A consultation can be requested once the patient has consented." in page
    rows = AuditEntry.objects.filter(patient_id=str(patient.pk)).values_list("action", flat=True)
    assert sorted(rows) == ["create", "view"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("snils", "112-233-445 96", "This SNILS fails its check digits"),
        ("snils", "12345", "SNILS has 11 digits"),
        ("birth_date", (date.today() + timedelta(days=1)).isoformat(), "The birth date is in the future"),
        ("birth_date", "1850-01-01", "more than 130 years ago"),
        ("oms_policy", "77-00", "The OMS policy number has 16 digits."),
        ("family_name", "<b>Иванов</b>", "Use only letters"),
    ],
)
def test_bad_patient_data_is_refused_with_what_to_fix_and_nothing_saved(
    field: str, value: str, message: str, tula_clinician: User, login
) -> None:  # type: ignore[no-untyped-def]
    response = login(tula_clinician).post("/patients/new/", _new_patient(**{field: value}))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Patient.objects.exists()
    assert AuditEntry.objects.filter(action="create", outcome="invalid").count() == 1


def test_a_record_number_is_unique_within_the_hospital(tula_clinician: User, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    PatientFactory(hospital=network_a.regional, record_number="TUL-1")
    PatientFactory(hospital=network_a.central, record_number="TUL-2")  # another hospital may reuse numbers
    client = login(tula_clinician)
    response = client.post("/patients/new/", _new_patient(record_number="TUL-1"))
    assert "already belongs to another patient of this hospital" in response.content.decode()
    assert client.post("/patients/new/", _new_patient(record_number="TUL-2")).status_code == 302


@pytest.mark.parametrize(
    "same",
    [
        {"snils": "11223344595"},
        {"family_name": "ЕЛКИНА", "given_name": "анна", "patronymic": "Петровна", "birth_date": date(1958, 7, 21)},
    ],
)
def test_a_likely_duplicate_is_shown_before_saving(
    same: dict[str, object], tula_clinician: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    existing = PatientFactory(hospital=network_a.regional, **{"snils": "", **same})
    client = login(tula_clinician)
    response = client.post("/patients/new/", _new_patient(snils=VALID_SNILS if "snils" in same else ""))
    assert response.status_code == 409
    page = response.content.decode()
    assert "This patient may already be registered" in page and f"/patients/{existing.pk}/" in page
    assert Patient.objects.count() == 1
    confirmed = client.post(
        "/patients/new/", {**_new_patient(snils=VALID_SNILS if "snils" in same else ""), "confirm_not_duplicate": "on"}
    )
    assert confirmed.status_code == 302 and Patient.objects.count() == 2


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("елкина", True),
        ("АННА ёлкина", True),
        ("TUL-2026-0042", True),
        ("tul-2026-0042", True),
        ("TUL-2026-004", False),
        ("11223344595", True),
        ("21.07.1958", True),
        ("1958-07-21", True),
        ("Смирнова", False),
    ],
)
def test_search_by_name_record_number_snils_and_birth_date(
    query: str, found: bool, tula_clinician: User, login
) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_clinician)
    client.post("/patients/new/", _new_patient())
    page = client.get("/patients/", {"q": query}).content.decode()
    results = page.split('data-testid="patient-results"')[1]
    assert ("Ёлкина Анна Петровна" in results) is found


def test_patients_are_listed_alphabetically_with_yo_among_ye(network_a: Network, tula_clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    for family in ("Жукова", "Ёлкина", "егорова", "Абрамова"):
        PatientFactory(hospital=network_a.regional, family_name=family)
    page = login(tula_clinician).get("/patients/").content.decode().split('data-testid="patient-results"')[1]
    positions = [page.index(family) for family in ("Абрамова", "егорова", "Ёлкина", "Жукова")]
    assert positions == sorted(positions)


def test_a_tula_clinician_never_sees_a_yaroslavl_patient(network_a: Network, tula_clinician: User, login) -> None:  # type: ignore[no-untyped-def]
    yaroslavl = Hospital.objects.create(
        name="Yaroslavl Regional Hospital", kind="regional", region="Y", central_hospital=network_a.central
    )
    theirs = PatientFactory(hospital=yaroslavl, family_name="Ярославцева")
    client = login(tula_clinician)
    results = client.get("/patients/", {"q": "Ярославцева"}).content.decode().split('data-testid="patient-results"')[1]
    assert "Ярославцева" not in results
    assert client.get(f"/patients/{theirs.pk}/").status_code == 404
    assert client.post(f"/patients/{theirs.pk}/consent/", {"telemedicine": "on"}).status_code == 404
    assert not Consent.objects.exists()
    assert AuditEntry.objects.filter(outcome="not_found", object_id=str(theirs.pk)).count() == 2


def test_hospital_admins_manage_people_not_patients(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    admin = StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user
    client = login(admin)
    assert client.get("/patients/").status_code == 403
    assert client.get(f"/patients/{patient.pk}/").status_code == 404


def test_consent_is_recorded_with_a_scanned_form(tula_clinician: User, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    scan = SimpleUploadedFile("consent.pdf", b"%PDF-1.7\n" + b"0" * 1000, content_type="application/pdf")
    client = login(tula_clinician)
    response = client.post(
        f"/patients/{patient.pk}/consent/", {"telemedicine": "on", "data_sharing": "on", "form_scan": scan}
    )
    assert response.status_code == 302
    consent = Consent.objects.get(patient=patient)
    assert consent.is_valid and consent.recorded_by == tula_clinician and consent.form_scan.name.endswith(".pdf")
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "given" in page and f"/patients/{patient.pk}/consent/{consent.pk}/scan/" in page
    download = client.get(f"/patients/{patient.pk}/consent/{consent.pk}/scan/")
    assert b"".join(download.streaming_content).startswith(b"%PDF-1.7")
    assert AuditEntry.objects.filter(action="export", object_type="patients.consent").count() == 1
    # The file itself is not reachable as a public media URL.
    assert client.get(f"/media/{consent.form_scan.name}").status_code == 404


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"MZ\x90\x00" + b"\x00" * 100, "consent.pdf", "not a PDF, JPEG or PNG, whatever its name says"),
        (b"%PDF-" + b"0" * (11 * 2**20), "big.pdf", "the limit is 10 MB"),
    ],
)
def test_a_scan_that_is_not_a_document_or_too_big_is_refused(
    content: bytes, name: str, message: str, tula_clinician: User, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    response = login(tula_clinician).post(
        f"/patients/{patient.pk}/consent/",
        {"telemedicine": "on", "data_sharing": "on", "form_scan": SimpleUploadedFile(name, content)},
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Consent.objects.exists()
    assert AuditEntry.objects.filter(object_type="patients.consent", outcome="invalid").count() == 1


def test_only_the_home_hospital_corrects_a_record(tula_clinician: User, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional, family_name="Старая")
    client = login(tula_clinician)
    form = _new_patient(record_number=patient.record_number, family_name="Новая", snils="")
    assert client.post(f"/patients/{patient.pk}/edit/", form).status_code == 302
    patient.refresh_from_db()
    assert patient.family_name == "Новая" and patient.search_name.startswith("новая")


def test_the_patient_list_costs_the_same_queries_for_more_rows(tula_clinician: User, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    client = login(tula_clinician)
    PatientFactory.create_batch(3, hospital=network_a.regional)

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/patients/").status_code == 200
        return len(captured)

    count()  # the first audited request of the test creates the audit chain's head
    few = count()
    PatientFactory.create_batch(22, hospital=network_a.regional)
    assert count() == few
