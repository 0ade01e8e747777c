"""The API as an integration uses it: a token from a verified session, the same rules and messages as the
pages, stable error codes, a schema and docs served by the app."""

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from consultations.models import Consultation
from hospitals.models import AuditEntry, Specialty, Staff
from patients.models import Consent, Patient
from tests.conftest import Network, PatientFactory, StaffFactory


def _token(client: Client) -> str:
    response = client.post("/api/v1/tokens/")
    assert response.status_code == 200
    return str(response.json()["token"])


def test_a_token_made_from_a_verified_session_opens_the_api_and_can_be_revoked(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    clinician = StaffFactory(hospital=network_a.regional).user
    PatientFactory(hospital=network_a.regional, family_name="Токенова")
    token = _token(login(clinician))
    api = Client(headers={"authorization": f"Token {token}"})
    body = api.get("/api/v1/patients/").json()
    assert [p["family_name"] for p in body["results"]] == ["Токенова"]
    assert api.post("/api/v1/tokens/revoke/").status_code == 204
    assert api.get("/api/v1/patients/").status_code in (401, 403)
    assert AuditEntry.objects.filter(object_type="knox.token", action="create").count() == 1


def test_a_specialist_session_without_the_second_factor_gets_no_token(network_a: Network) -> None:
    specialist = StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user
    client = Client()
    client.force_login(specialist, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post("/api/v1/tokens/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_patients_over_the_api_are_scoped_validated_and_audited(network_a: Network, network_b: Network, login) -> None:  # type: ignore[no-untyped-def]
    clinician = StaffFactory(hospital=network_a.regional).user
    foreign = PatientFactory(hospital=network_b.regional)
    api = login(clinician)
    missing = api.get(f"/api/v1/patients/{foreign.pk}/")
    assert missing.status_code == 404 and missing.json() == {"code": "not_found", "detail": "Not found."}

    new = {
        "record_number": "API-1",
        "family_name": "Апиева",
        "given_name": "Ольга",
        "sex": "female",
        "birth_date": "1970-01-02",
        "snils": "112-233-445 96",
    }
    bad = api.post("/api/v1/patients/", new, content_type="application/json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid" and "check digits" in bad.json()["errors"]["snils"][0]

    created = api.post("/api/v1/patients/", {**new, "snils": "11223344595"}, content_type="application/json")
    assert created.status_code == 201 and created.json()["snils"] == "11223344595"
    duplicate = api.post(
        "/api/v1/patients/", {**new, "record_number": "API-2", "snils": "11223344595"}, content_type="application/json"
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "likely_duplicate" and duplicate.json()["duplicates"] == [created.json()["id"]]
    assert Patient.objects.filter(hospital=network_a.regional).count() == 1
    assert AuditEntry.objects.filter(object_type="patients.patient", action="create", outcome="success").count() == 1


def test_the_consultation_workflow_over_the_api(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    clinician = StaffFactory(hospital=network_a.regional).user
    specialists = [StaffFactory(hospital=network_a.central, role=Staff.Role.SPECIALIST).user for _ in range(2)]
    patient = PatientFactory(hospital=network_a.regional)
    Specialty.objects.get_or_create(code="cardiology", defaults={"name_en": "Cardiology", "name_ru": "К"})
    request = {
        "patient": patient.pk,
        "urgency": "emergency",
        "specialty": "cardiology",
        "question": "STEMI?",
        "condition": "pain",
    }
    refused = login(clinician).post("/api/v1/consultations/", request, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["code"] == "consultation_refused"
    assert "consent" in refused.json()["detail"]

    Consent.objects.create(patient=patient, telemedicine=True, data_sharing=True, recorded_by=clinician)
    created = login(clinician).post("/api/v1/consultations/", request, content_type="application/json").json()
    assert created["state"] == "requested" and created["consulted_hospital"] == network_a.central.name

    first, second = (login(user) for user in specialists)
    assert [c["id"] for c in first.get("/api/v1/consultations/").json()["results"]] == [created["id"]]
    assert first.post(f"/api/v1/consultations/{created['id']}/moves/", {"move": "accept"}).json()["state"] == "accepted"
    late = second.post(f"/api/v1/consultations/{created['id']}/moves/", {"move": "accept"})
    assert late.status_code == 409 and "already accepted" in late.json()["detail"]

    device = TOTPDevice.objects.get(user=specialists[0])
    conclusion = {
        "findings": "ST elevation",
        "diagnosis": "I21.1",
        "diagnosis_text": "Inferior STEMI",
        "recommendation": "transfer",
        "plan": "PCI today",
        "code": f"{totp(device.bin_key, step=device.step, t0=device.t0):06d}",
    }
    signed = first.post(
        f"/api/v1/consultations/{created['id']}/conclusions/", conclusion, content_type="application/json"
    )
    assert signed.status_code == 201 and signed.json()["version"] == 1
    assert Consultation.objects.get(pk=created["id"]).state == "concluded"
    versions = login(clinician).get(f"/api/v1/consultations/{created['id']}/conclusions/").json()
    assert [v["diagnosis"] for v in versions] == ["I21.1"]


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_schema_and_docs_are_served_by_the_app(path: str, network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    response = login(StaffFactory(hospital=network_a.regional).user).get(path)
    assert response.status_code == 200
    text = response.content.decode()
    if path == "/api/schema/":
        assert "/api/v1/consultations/{id}/moves/" in text and "openapi: 3" in text
    else:
        assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in text and "cdn" not in text.lower()
