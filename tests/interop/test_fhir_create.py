"""POST /fhir/Observation with a device token: stored through the lab pipeline (flag, critical alert);
bad input answered with an OperationOutcome and nothing stored."""

import copy
import datetime
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from devices.fhir import EXAMPLE_OBSERVATION
from devices.models import Device
from diagnostics.models import LabAlert, Observation
from hospitals.models import User
from interop.views import validate
from tests.devices.conftest import analyser, token_for, tula_admin  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.usefixtures("lab_reference")]


@pytest.fixture
def post(analyser: Device, tula_admin: User, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]  # noqa: F811
    _, plain = token_for(analyser, tula_admin)

    def send(body: Any, token: str | None = plain) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Device {token}"} if token else {}
        data = body if isinstance(body, str) else json.dumps(body)
        with django_capture_on_commit_callbacks(execute=True):
            response = Client().post("/fhir/Observation", data, content_type="application/fhir+json", **headers)
        assert response["Content-Type"].startswith("application/fhir+json")
        validate(response.json())
        return response

    return send


def troponin(subject: dict[str, Any], value: float = 0.45) -> dict[str, Any]:
    resource = copy.deepcopy(EXAMPLE_OBSERVATION)
    resource["subject"] = subject
    resource["code"]["coding"][0]["code"] = "10839-9"
    resource["valueQuantity"].update(value=value, unit="ng/mL", code="ng/mL")
    resource["effectiveDateTime"] = (timezone.now() - datetime.timedelta(minutes=15)).isoformat()
    resource["identifier"][0]["value"] = f"fhir-{value}-{subject}"
    return resource


def test_a_critical_observation_posted_by_reference_is_flagged_and_alerted(post, tula_patient: Any) -> None:  # type: ignore[no-untyped-def]
    response = post(troponin({"reference": f"Patient/{tula_patient.pk}"}))

    assert response.status_code == 201
    stored = Observation.objects.get()
    assert response.json()["id"] == str(stored.pk) and response["Location"].endswith(f"/fhir/Observation/{stored.pk}")
    assert stored.patient == tula_patient and stored.flag == "critical_high"
    assert LabAlert.objects.get().observation == stored


def test_an_observation_by_record_number_is_stored(post, tula_patient: Any) -> None:  # type: ignore[no-untyped-def]
    response = post(troponin({"identifier": {"value": tula_patient.record_number}}, value=0.01))
    assert response.status_code == 201
    assert Observation.objects.get().patient == tula_patient and not LabAlert.objects.exists()


def test_another_hospitals_patient_is_refused_and_nothing_stored(post, kostroma_patient: Any) -> None:  # type: ignore[no-untyped-def]
    response = post(troponin({"reference": f"Patient/{kostroma_patient.pk}"}))
    assert response.status_code == 400
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and "not a patient" in body["issue"][0]["diagnostics"]
    assert not Observation.objects.exists() and not LabAlert.objects.exists()


def test_malformed_json_and_a_wrong_resource_type_are_400(post, tula_patient: Any) -> None:  # type: ignore[no-untyped-def]
    broken = post('{"resourceType": "Observation",')
    assert broken.status_code == 400 and broken.json()["issue"][0]["code"] == "structure"
    wrong = post({"resourceType": "Patient", "id": "1"})
    assert wrong.status_code == 400 and "Patient" in wrong.json()["issue"][0]["diagnostics"]
    assert not Observation.objects.exists()


def test_without_a_device_token_nothing_is_stored(post, tula_patient: Any, tula: Any) -> None:  # type: ignore[no-untyped-def]
    response = post(troponin({"reference": f"Patient/{tula_patient.pk}"}), token=None)
    assert response.status_code == 401 and response.json()["resourceType"] == "OperationOutcome"
    assert not Observation.objects.exists()
