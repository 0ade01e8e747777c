"""A glucometer or an analyser posts JSON readings with its token: stored at once under its hospital, answered
with what each became, refused field by field when wrong, and never stored twice."""

import datetime
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from devices.models import Device
from diagnostics.models import LabAlert, LabMessage, Observation
from hospitals.models import User
from tests.conftest import Network, PatientFactory
from tests.devices.conftest import token_for

pytestmark = [pytest.mark.usefixtures("lab_reference")]

URL = "/api/v1/device/readings"


@pytest.fixture
def send(analyser: Device, tula_admin: User, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    _, plain = token_for(analyser, tula_admin)

    def post(body: Any, token: str | None = plain) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Device {token}"} if token else {}
        with django_capture_on_commit_callbacks(execute=True):
            return Client().post(URL, body, content_type="application/json", **headers)

    return post


def _taken(minutes_ago: int = 20) -> str:
    return (timezone.now() - datetime.timedelta(minutes=minutes_ago)).isoformat()


def test_readings_are_stored_with_flags_and_the_answer_says_what_each_became(network_a: Network, send) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    response = send(
        {
            "id": "meter-7-batch-1",
            "readings": [
                {"id": "r1", "patient": patient.record_number, "code": "2345-7", "value": 5.4, "unit": "mmol/L",
                 "observed_at": _taken()},
                {"id": "r2", "patient": patient.record_number, "name": "glucose", "value": "2,1", "unit": "mmol/L",
                 "observed_at": _taken(10)},
                {"id": "r3", "patient": "TUL-NOBODY", "code": "2345-7", "value": "6.0", "unit": "mmol/L",
                 "observed_at": _taken()},
            ],
        }
    )  # fmt: skip

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "done" and body["errors"] == [] and body["duplicates"] == 0
    normal, critical, unknown = body["stored"]
    assert (normal["test"], normal["value"], normal["flag"], normal["matched"]) == (
        "14749-6",
        "5.400000",
        "normal",
        True,
    )
    assert critical["flag"] == "critical_low" and critical["review"] == ""
    assert (unknown["matched"], unknown["review"], unknown["patient"]) == (False, "patient", "TUL-NOBODY")
    assert LabAlert.objects.get().patient == patient
    message = LabMessage.objects.get()
    assert (message.source, message.control_id, message.stored) == ("json", "meter-7-batch-1", 3)
    assert '"r2"' in message.raw  # what the device sent, kept


def test_one_reading_alone_and_the_same_request_again_is_stored_once(network_a: Network, send) -> None:  # type: ignore[no-untyped-def]
    patient = PatientFactory(hospital=network_a.regional)
    reading = {"patient": patient.record_number, "code": "2345-7", "value": "5.4", "unit": "mmol/L",
               "observed_at": "2026-01-05T08:00:00"}  # fmt: skip
    first, again = send(reading), send(reading)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["stored"] == again.json()["stored"]
    assert Observation.objects.count() == 1 and LabMessage.objects.count() == 1
    # Without an offset, the time is the hospital's local time (Moscow, UTC+3).
    assert Observation.objects.get().observed_at == datetime.datetime(2026, 1, 5, 5, 0, tzinfo=datetime.UTC)

    # The same reading in another request (another id) is recognised by device, patient, test and time.
    third = send({"id": "other", "readings": [reading]})
    assert third.status_code == 201 and third.json()["stored"] == [] and third.json()["duplicates"] == 1


def test_wrong_fields_are_refused_with_a_reason_each_and_nothing_stored(network_a: Network, send) -> None:  # type: ignore[no-untyped-def]
    response = send(
        {
            "readings": [
                {"patient": "TUL-1", "code": "2345-7", "value": "high", "unit": "mmol/L", "observed_at": _taken()},
                {"patient": "TUL-1", "value": "5.0", "observed_at": "yesterday"},
                {"code": "2345-7", "value": "5.0",
                 "observed_at": (timezone.now() + datetime.timedelta(hours=2)).isoformat()},
            ]
        }
    )  # fmt: skip

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    first, second, third = body["errors"]["readings"]
    assert "“high” is not a number" in first["value"][0]
    assert "observed_at" in second and "code" not in second  # the time is wrong first
    assert third["patient"] and "in the future" in third["observed_at"][0]
    assert not LabMessage.objects.exists()


@pytest.mark.parametrize("body", [{}, {"readings": []}, [], "5.4"])
def test_an_empty_or_shapeless_body_is_refused(body: Any, send) -> None:  # type: ignore[no-untyped-def]
    response = send(body)
    assert response.status_code == 400 and response.json()["code"] in ("invalid", "parse_error")


def test_a_value_no_result_can_have_is_kept_but_answered_400(network_a: Network, send) -> None:  # type: ignore[no-untyped-def]
    response = send({"patient": "TUL-1", "code": "GLU", "value": "1e12", "unit": "mmol/L", "observed_at": _taken()})
    assert response.status_code == 400
    assert "too large to be a result" in response.json()["errors"][0]["reason"]
    assert LabMessage.objects.get().status == "rejected" and not Observation.objects.exists()


def test_a_reading_without_a_test_says_how_to_name_one(send) -> None:  # type: ignore[no-untyped-def]
    response = send({"patient": "TUL-1", "value": "5.0", "observed_at": _taken()})
    assert response.status_code == 400
    assert "its LOINC code in “code”" in response.json()["errors"]["readings"][0]["code"][0]


def test_without_a_token_nothing_is_taken(send) -> None:  # type: ignore[no-untyped-def]
    response = send({"patient": "TUL-1", "code": "GLU", "value": "5.0", "observed_at": _taken()}, token=None)
    assert response.status_code == 401 and response.json()["code"] == "device_token_missing"
    assert not LabMessage.objects.exists()


def test_another_hospitals_patient_is_never_matched(network_a: Network, network_b: Network, send) -> None:  # type: ignore[no-untyped-def]
    stranger = PatientFactory(hospital=network_b.regional)
    response = send({"patient": stranger.record_number, "code": "GLU", "value": "1.5", "unit": "mmol/L",
                     "observed_at": _taken()})  # fmt: skip
    stored = response.json()["stored"][0]
    assert stored["matched"] is False and stored["review"] == "patient"
    assert Observation.objects.get().hospital == network_a.regional and not LabAlert.objects.exists()


def test_the_schema_documents_the_device_endpoints(network_a: Network, login) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import StaffFactory

    response = login(StaffFactory(hospital=network_a.regional).user).get("/api/schema/?format=json")
    paths = response.json()["paths"]
    readings = paths["/api/v1/device/readings"]["post"]
    assert readings["security"] == [{"deviceToken": []}]
    assert "201" in readings["responses"] and "meter-7-2026-11-28-0001" in str(readings["requestBody"])
    assert "x-application/hl7-v2+er7" in paths["/api/v1/device/hl7"]["post"]["requestBody"]["content"]
    assert "application/fhir+json" in paths["/api/v1/device/fhir/Observation"]["post"]["requestBody"]["content"]
