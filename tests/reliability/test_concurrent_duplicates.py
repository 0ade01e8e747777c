"""The same thing sent several times at the same moment (a modality's retry racing its first try, an
analyser resending before the ACK arrived): one record each, and every sender told it is stored.

Real concurrency needs PostgreSQL (SQLite writes one at a time): the requests go through the real ASGI
server, each in its own thread, released together."""

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from devices.models import Device
from devices.services import device_token_issue
from diagnostics.models import Instance, LabMessage, Observation
from hospitals.models import Staff
from tests.conftest import Network, PatientFactory, StaffFactory, dicom_for, need
from tests.devices.test_hl7 import GLUCOSE, TROPONIN, oru

SENDERS = 8
pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def postgresql() -> None:
    need("PostgreSQL (DATABASE_URL)", connection.vendor == "postgresql")


def _at_once(send: Callable[[], requests.Response]) -> list[requests.Response]:
    """send() from SENDERS threads released at the same moment; their answers."""
    start = threading.Barrier(SENDERS)
    answers: list[requests.Response] = []
    failures: list[BaseException] = []

    def one() -> None:
        start.wait()
        try:
            answers.append(send())
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=one) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    return answers


def _stored_files() -> list[Path]:
    return sorted(Path(settings.MEDIA_ROOT, "dicom").rglob("*.dcm"))


def test_one_image_sent_by_stow_rs_eight_times_at_once_is_stored_once(
    asgi_server: str, network_a: Network, login
) -> None:  # type: ignore[no-untyped-def]
    clinician = StaffFactory(hospital=network_a.regional).user
    token = login(clinician).post("/api/v1/tokens/").json()["token"]
    patient = PatientFactory(hospital=network_a.regional)
    data = dicom_for(patient)
    body = b"\r\n--B\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--B--"
    headers = {
        "Authorization": f"Token {token}",
        "Content-Type": 'multipart/related; type="application/dicom"; boundary=B',
        "Accept": "application/dicom+json",
    }

    answers = _at_once(
        lambda: requests.post(f"{asgi_server}/dicom-web/studies", data=body, headers=headers, timeout=60)
    )

    assert [answer.status_code for answer in answers] == [200] * SENDERS, [a.text[:300] for a in answers]
    assert Instance.objects.count() == 1
    assert len(_stored_files()) == 1 and _stored_files()[0].read_bytes() == data


def test_one_hl7_message_sent_eight_times_at_once_is_stored_once_and_acknowledged_to_all(
    asgi_server: str, network_a: Network, lab_reference
) -> None:  # type: ignore[no-untyped-def]
    admin = StaffFactory(hospital=network_a.regional, role=Staff.Role.HOSPITAL_ADMIN).user
    analyser = Device.objects.create(hospital=network_a.regional, name="Analyser", kind=Device.Kind.LAB_ANALYSER)
    _, token = device_token_issue(device=analyser, by=admin)
    patient = PatientFactory(hospital=network_a.regional)
    message = oru(patient.record_number, GLUCOSE, TROPONIN, control_id="RACE-1")
    headers = {"Authorization": f"Device {token}", "Content-Type": "x-application/hl7-v2+er7; charset=utf-8"}

    answers = _at_once(
        lambda: requests.post(f"{asgi_server}/api/v1/device/hl7", data=message.encode(), headers=headers, timeout=60)
    )

    assert [answer.status_code for answer in answers] == [200] * SENDERS, [a.text[:300] for a in answers]
    assert all("MSA|AA|RACE-1" in answer.text for answer in answers)
    assert LabMessage.objects.count() == 1
    assert Observation.objects.filter(patient=patient).count() == 2
