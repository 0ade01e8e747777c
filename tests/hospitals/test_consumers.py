"""The live-notification socket: who may open it, and deactivation closing it at once."""

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from hospitals import services
from hospitals.consumers import CLOSE_SESSION_ENDED
from hospitals.models import Staff
from mhospital.asgi import application
from mhospital.routing import websocket_urlpatterns
from tests.conftest import HospitalFactory, StaffFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _socket(user, session=None) -> WebsocketCommunicator:  # type: ignore[no-untyped-def]
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/notifications/")
    communicator.scope["user"] = user
    communicator.scope["session"] = session or {}
    return communicator


async def test_an_anonymous_socket_is_refused() -> None:
    connected, _ = await _socket(AnonymousUser()).connect()
    assert not connected


async def test_a_specialist_without_a_confirmed_second_factor_is_refused() -> None:
    staff, other = await sync_to_async(StaffFactory)(role=Staff.Role.SPECIALIST), await sync_to_async(StaffFactory)()
    own_device = await sync_to_async(TOTPDevice.objects.create)(user=staff.user, name="phone", confirmed=True)
    unconfirmed = await sync_to_async(TOTPDevice.objects.create)(user=staff.user, name="new", confirmed=False)
    someone_elses = await sync_to_async(TOTPDevice.objects.create)(user=other.user, name="x", confirmed=True)

    for session in (
        {},  # never confirmed a code in this session
        {DEVICE_ID_SESSION_KEY: "otp_totp.totpdevice/987654"},  # a forged id
        {DEVICE_ID_SESSION_KEY: unconfirmed.persistent_id},  # enrolment not finished
        {DEVICE_ID_SESSION_KEY: someone_elses.persistent_id},  # another person's authenticator
    ):
        connected, _ = await _socket(staff.user, session).connect()
        assert not connected, session
    connected, _ = await _socket(staff.user, {DEVICE_ID_SESSION_KEY: own_device.persistent_id}).connect()
    assert connected


async def test_deactivation_closes_the_open_socket_at_once() -> None:
    staff = await sync_to_async(StaffFactory)(role=Staff.Role.CLINICIAN)
    socket = _socket(staff.user)
    connected, _ = await socket.connect()
    assert connected

    admin = await sync_to_async(StaffFactory)(hospital=staff.hospital, role=Staff.Role.HOSPITAL_ADMIN)
    await sync_to_async(services.staff_deactivate)(staff=staff, by=admin.user)

    closed = await socket.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": CLOSE_SESSION_ENDED}


async def test_hospital_events_reach_only_that_hospitals_sockets() -> None:
    from channels.layers import get_channel_layer

    from hospitals.events import hospital_group

    tula, kazan = await sync_to_async(HospitalFactory)(), await sync_to_async(HospitalFactory)()
    here = await sync_to_async(StaffFactory)(hospital=tula)
    there = await sync_to_async(StaffFactory)(hospital=kazan)
    here_socket, there_socket = _socket(here.user), _socket(there.user)
    assert (await here_socket.connect())[0] and (await there_socket.connect())[0]

    payload = {"type": "notify", "payload": {"kind": "test", "text": "new request"}}
    await get_channel_layer().group_send(hospital_group(tula.pk), payload)

    assert await here_socket.receive_json_from(timeout=3) == {"kind": "test", "text": "new request"}
    assert await there_socket.receive_nothing(timeout=0.3)
    await here_socket.disconnect()
    await there_socket.disconnect()


async def test_the_browser_session_cookie_opens_the_socket_through_the_real_stack() -> None:
    staff = await sync_to_async(StaffFactory)(role=Staff.Role.CLINICIAN)
    client = Client()
    await sync_to_async(client.force_login)(staff.user, backend="django.contrib.auth.backends.ModelBackend")
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()
    headers = [(b"origin", b"http://testserver"), (b"cookie", cookie)]

    socket = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    assert (await socket.connect())[0]
    admin = await sync_to_async(StaffFactory)(hospital=staff.hospital, role=Staff.Role.HOSPITAL_ADMIN)
    await sync_to_async(services.staff_deactivate)(staff=staff, by=admin.user)
    assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": CLOSE_SESSION_ENDED}

    # The same cookie cannot open a new socket afterwards.
    again = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    assert not (await again.connect())[0]


async def test_a_socket_from_a_foreign_origin_is_refused() -> None:
    communicator = WebsocketCommunicator(
        application, "/ws/notifications/", headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected
