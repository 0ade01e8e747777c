"""A device posts FHIR R4 Observations (one, or a Bundle): checked against the FHIR model, stored under the
device's hospital, answered with the stored id or an OperationOutcome naming each issue."""

import copy
import datetime
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from devices.fhir import EXAMPLE_OBSERVATION
from devices.models import Device
from diagnostics.models import LabAlert, LabMessage, Observation
from hospitals.models import User
from tests.conftest import Network, PatientFactory
from tests.devices.conftest import token_for

pytestmark = [pytest.mark.usefixtures("lab_reference")]

URL = "/api/v1/device/fhir/Observation"


@pytest.fixture
def send(analyser: Device, tula_admin: User, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    _, plain = token_for(analyser, tula_admin)

    def post(body: Any, token: str | None = plain, content_type: str = "application/fhir+json") -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Device {token}"} if token else {}
        data = body if isinstance(body, str) else json.dumps(body)
        with django_capture_on_commit_callbacks(execute=True):
            return Client().post(URL, data, content_type=content_type, **headers)

    return post


def observation(record: str, *, value: float = 5.4, code: str = "2345-7", unit: str = "mmol/L", **more: Any) -> dict:  # type: ignore[type-arg]
    resource = copy.deepcopy(EXAMPLE_OBSERVATION)
    resource["subject"] = {"identifier": {"value": record}}
    resource["code"]["coding"][0]["code"] = code
    resource["valueQuantity"].update(value=value, unit=unit, code=unit)
    resource["effectiveDateTime"] = (timezone.now() - datetime.timedelta(minutes=15)).isoformat()
    resource["identifier"][0]["value"] = f"{code}-{value}-{record}"
    resource.update(more)
    return resource


def test_an_observation_is_stored_and_answered_201_with_its_id(network_a: Network, send) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    response = send(observation(patient.record_number, value=0.45, code="10839-9", unit="ng/mL"))

    assert response.status_code == 201 and response["Content-Type"].startswith("application/fhir+json")
    stored = Observation.objects.get()
    body = response.json()
    assert body["resourceType"] == "Observation" and body["id"] == str(stored.pk)
    assert response["Location"].endswith(f"{URL}/{stored.pk}")
    assert stored.patient == patient and stored.test.short_name == "hs-TnI" and stored.flag == "critical_high"
    assert LabAlert.objects.get().observation == stored
    message = LabMessage.objects.get()
    assert message.source == "fhir" and json.loads(message.raw)["valueQuantity"]["value"] == 0.45


def test_the_same_observation_again_is_not_stored_twice(network_a: Network, send) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    resource = observation(patient.record_number)
    first, again = send(resource), send(resource)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and Observation.objects.count() == 1


def test_a_bundle_stores_its_observations_and_names_the_one_refused(network_a: Network, send) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    withdrawn = observation(patient.record_number, value=9.9, status="entered-in-error")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": observation(patient.record_number)},
            {"resource": observation(patient.record_number, value=140, code="2951-2")},
            {"resource": withdrawn},
        ],
    }
    response = send(bundle)

    assert response.status_code == 201
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    stored, refused = body["issue"]
    assert stored["severity"] == "information" and "Stored 2 observations" in stored["diagnostics"]
    assert refused["severity"] == "error" and refused["expression"] == ["Bundle.entry[2].resource.status"]
    assert "cannot withdraw a result" in refused["diagnostics"]
    assert Observation.objects.count() == 2 and LabMessage.objects.get().status == "partial"


@pytest.mark.parametrize(
    ("change", "expression", "words"),
    [
        ({"effectiveDateTime": "yesterday"}, "Observation.effectiveDateTime", "does not match"),
        ({"valueQuantity": {"value": "a lot", "unit": "mmol/L"}}, "Observation.valueQuantity.value", "Decimal"),
        ({"code": None}, "Observation.code", ""),
    ],
)
def test_what_fhir_does_not_allow_is_refused_with_an_operation_outcome(  # type: ignore[no-untyped-def]
    change: dict[str, Any], expression: str, words: str, network_a: Network, send
) -> None:
    resource = {**observation("TUL-1"), **change}
    resource = {key: value for key, value in resource.items() if value is not None}
    response = send(resource)

    assert response.status_code == 400
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert any(expression in issue["expression"][0] and words in issue["diagnostics"] for issue in body["issue"])
    assert not LabMessage.objects.exists()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"resourceType": "Patient", "id": "1"}, "Only an Observation or a Bundle"),
        ("{not json", "JSON parse error"),
        ([], "Send one FHIR resource"),
    ],
)
def test_what_is_not_an_observation_is_refused(body: Any, words: str, send) -> None:  # type: ignore[no-untyped-def]
    response = send(body)
    assert response.status_code == 400
    assert words in response.json()["issue"][0]["diagnostics"]


def test_an_observation_the_pipeline_cannot_store_is_a_400_naming_why(network_a: Network, send) -> None:  # type: ignore[no-untyped-def]
    no_patient = observation("TUL-1")
    del no_patient["subject"]
    response = send(no_patient)
    assert response.status_code == 400
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["Observation.subject.identifier"] and "record number" in issue["diagnostics"]
    assert LabMessage.objects.get().status == "rejected" and not Observation.objects.exists()


def test_another_hospitals_patient_is_not_matched(network_a: Network, network_b: Network, send) -> None:  # type: ignore[no-untyped-def]
    stranger = PatientFactory(hospital=network_b.regional)
    assert send(observation(stranger.record_number, value=1.1)).status_code == 201
    stored = Observation.objects.get()
    assert stored.patient is None and stored.review == "patient" and stored.hospital == network_a.regional


def test_without_a_token_nothing_is_taken(send) -> None:  # type: ignore[no-untyped-def]
    assert send(observation("TUL-1"), token=None).status_code == 401
    assert not LabMessage.objects.exists()
