"""A WebSocket is signed in by its session cookie, checked as Django checks a page's: the specialist's second
factor carries over from the session, no cookie or a session cut by a password change is anonymous."""

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from hospitals.consumers import CLOSE_UNAUTHENTICATED
from hospitals.models import Staff, User
from tests.conftest import Network, StaffFactory, verified_login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _open(cookie: bytes | None) -> tuple[bool, Any]:
    from mhospital.asgi import application

    headers = [(b"origin", b"http://testserver")] + ([(b"cookie", cookie)] if cookie is not None else [])
    socket = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    connected, code = await socket.connect()
    await socket.disconnect()
    return connected, code


def _signed_in(role: str, network: Network) -> tuple[User, bytes]:
    user = StaffFactory(hospital=network.central, role=role).user
    client = verified_login(Client(), user)
    return user, f"theme=dark; {settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode()


async def test_the_session_cookie_signs_the_socket_in_with_its_second_factor(network_a: Network) -> None:
    _, cookie = await sync_to_async(_signed_in)(Staff.Role.SPECIALIST, network_a)
    assert await _open(cookie) == (True, None)


async def test_no_cookie_or_an_unknown_session_is_anonymous() -> None:
    assert await _open(None) == (False, CLOSE_UNAUTHENTICATED)
    assert await _open(f"{settings.SESSION_COOKIE_NAME}=forged".encode()) == (False, CLOSE_UNAUTHENTICATED)


async def test_a_password_change_signs_the_sockets_of_older_sessions_out(network_a: Network) -> None:
    user, cookie = await sync_to_async(_signed_in)(Staff.Role.CLINICIAN, network_a)
    assert await _open(cookie) == (True, None)
    user.set_password("a new one, elsewhere")
    await sync_to_async(user.save)()
    assert await _open(cookie) == (False, CLOSE_UNAUTHENTICATED)
