"""The worklist is live: a new request reaches the consulted hospital's sockets, and no one else's."""

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from consultations import services
from hospitals.models import Hospital, Specialty, Staff
from mhospital.routing import websocket_urlpatterns
from patients.models import Consent
from tests.conftest import HospitalFactory, PatientFactory, StaffFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _specialist_socket(hospital: Hospital) -> WebsocketCommunicator:
    staff = await sync_to_async(StaffFactory)(hospital=hospital, role=Staff.Role.SPECIALIST)
    device = await sync_to_async(TOTPDevice.objects.create)(user=staff.user, name="phone", confirmed=True)
    socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/notifications/")
    socket.scope["user"] = staff.user
    socket.scope["session"] = {DEVICE_ID_SESSION_KEY: device.persistent_id}
    assert (await socket.connect())[0]
    return socket


def _request(central: Hospital) -> int:
    tula = HospitalFactory(kind="regional", central_hospital=central)
    clinician = StaffFactory(hospital=tula).user
    patient = PatientFactory(hospital=tula)
    Consent.objects.create(patient=patient, telemedicine=True, data_sharing=True, recorded_by=clinician)
    cardiology = Specialty.objects.create(code="cardiology-live", name_en="Cardiology", name_ru="Кардиология")
    consultation = services.consultation_create(
        patient=patient, by=clinician, specialty=cardiology, urgency="emergency", question="STEMI?", condition="pain"
    )
    return consultation.pk


async def test_a_new_request_reaches_the_worklist_of_the_consulted_hospital_only() -> None:
    moscow = await sync_to_async(HospitalFactory)(kind="central")
    kazan = await sync_to_async(HospitalFactory)(kind="central")
    moscow_socket, kazan_socket = await _specialist_socket(moscow), await _specialist_socket(kazan)

    pk = await sync_to_async(_request)(moscow)

    received = [await moscow_socket.receive_json_from(timeout=3) for _ in range(2)]
    assert {"kind": "consultation", "id": pk, "state": "requested"} in received
    assert {"kind": "notification", "unread": 1} in received  # the specialist's bell, on the same socket
    assert await kazan_socket.receive_nothing(timeout=0.5)
    await moscow_socket.disconnect()
    await kazan_socket.disconnect()


async def test_an_anonymous_worklist_socket_is_refused() -> None:
    socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/notifications/")
    socket.scope["user"] = AnonymousUser()
    assert not (await socket.connect())[0]
