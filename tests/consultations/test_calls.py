"""Video calls through the signalling socket (consultations/consumers.py), as two browsers would use it."""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from consultations import calls, services
from consultations.consumers import CallConsumer
from consultations.models import Call, CallGuest, Consultation, Message
from hospitals.models import AuditEntry, Notification, Staff, User
from mhospital.routing import websocket_urlpatterns
from tests.conftest import Network, StaffFactory, verified_login
from tests.consultations.conftest import Sides

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

# How long a test waits for a message that should come: long enough for a busy CI machine; a message that
# must come within a time is asserted with its own, shorter timeout.
WAIT = 10.0


def _session(user: User) -> dict[str, Any]:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None and hasattr(user, "staff") and user.staff.role == Staff.Role.SPECIALIST:
        device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    return {DEVICE_ID_SESSION_KEY: device.persistent_id} if device else {}


async def _open(user: Any, consultation_id: int) -> tuple[WebsocketCommunicator, bool, int | None]:
    socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/consultations/{consultation_id}/call/")
    socket.scope["user"] = user
    socket.scope["session"] = await sync_to_async(_session)(user) if user.is_authenticated else {}
    connected, code = await socket.connect()
    return socket, connected, code


async def _join(user: User, consultation_id: int) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """Open the call room; returns the socket and its welcome."""
    socket, connected, code = await _open(user, consultation_id)
    assert connected, code
    welcome = await socket.receive_json_from(timeout=WAIT)
    assert welcome["type"] == "welcome"
    return socket, welcome


async def _next(socket: WebsocketCommunicator, kind: str, timeout: float = WAIT) -> dict[str, Any]:
    """The next message of a type, skipping presence and other chatter in between."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        message = await socket.receive_json_from(timeout=max(0.01, deadline - loop.time()))
        if message["type"] == kind:
            return message


async def _send(socket: WebsocketCommunicator, **message: Any) -> None:
    await socket.send_json_to({"v": 1, **message})


async def _nothing_but_presence(socket: WebsocketCommunicator, timeout: float = 0.3) -> list[dict[str, Any]]:
    """What arrives within `timeout`; the test asserts it holds no relayed payload. (A communicator's receive
    that times out stops the application, so wait with receive_nothing.)"""
    received = []
    while not await socket.receive_nothing(timeout=timeout):
        received.append(await socket.receive_json_from())
    return received


@pytest_asyncio.fixture
async def answered(sides: Sides) -> AsyncIterator[tuple[WebsocketCommunicator, WebsocketCommunicator, int]]:
    """The specialist rang, the clinician answered: both sockets in the active call."""
    specialist, _ = await _join(sides.specialist, sides.consultation.pk)
    clinician, _ = await _join(sides.clinician, sides.consultation.pk)
    await _next(specialist, "presence")
    await _send(specialist, type="invite", lifetime=30)
    ringing = await _next(specialist, "ringing")
    await _next(clinician, "invite")
    await _send(clinician, type="accept")
    await _next(specialist, "accept")
    await _next(clinician, "call")
    yield specialist, clinician, ringing["call"]["id"]
    for socket in (specialist, clinician):
        # A socket the test saw closed (or whose receive timed out, which stops the application) has
        # nothing left to disconnect; its failure, if any, is the test's own.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await socket.disconnect()


async def test_the_two_sides_ring_answer_and_exchange_offer_answer_and_candidates(sides: Sides) -> None:
    notifications = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/notifications/")
    notifications.scope["user"] = sides.clinician
    notifications.scope["session"] = {}
    assert (await notifications.connect())[0]
    specialist, welcome = await _join(sides.specialist, sides.consultation.pk)
    assert welcome["call"] is None and welcome["peers"] == [] and welcome["guest"] is False
    clinician, welcome = await _join(sides.clinician, sides.consultation.pk)
    assert [peer["id"] for peer in welcome["peers"]] == [sides.specialist.pk]
    joined = await _next(specialist, "presence")
    assert joined["state"] == "joined" and joined["user"]["id"] == sides.clinician.pk
    # The polite role of the pair, assigned by the server: exactly one side yields.
    assert joined["polite"] != welcome["peers"][0]["polite"]

    await _send(specialist, type="invite", lifetime=30)
    ringing = await _next(specialist, "ringing")
    assert ringing["call"]["state"] == "ringing" and ringing["ringing"] == 1
    invite = await _next(clinician, "invite")
    assert invite["from"]["id"] == sides.specialist.pk and invite["lifetime"] == 30
    ring = await _next_kind(notifications, "call")
    assert ring["state"] == "ringing" and ring["consultation"] == sides.consultation.pk
    assert ring["url"] == f"/consultations/{sides.consultation.pk}/call/"

    await _send(clinician, type="accept")
    accepted = await _next(specialist, "accept")
    assert accepted["from"]["id"] == sides.clinician.pk and accepted["call"]["state"] == "active"
    assert (await _next(clinician, "call"))["call"]["state"] == "active"  # its own answer, not an echo
    # The clinician's other pages stop ringing, and the consultation's pages refresh its call log.
    events: dict[str, dict[str, Any]] = {}
    while not {"call", "consultation"} <= events.keys():
        event = await notifications.receive_json_from(timeout=WAIT)
        events[event["kind"]] = event
    assert events["call"]["state"] == "active"
    assert events["consultation"] == {"kind": "consultation", "id": sides.consultation.pk, "state": "accepted"}

    await _send(specialist, type="signal", description={"type": "offer", "sdp": "v=0 offer"})
    offer = await _next(clinician, "signal")
    assert offer["description"] == {"type": "offer", "sdp": "v=0 offer"}
    assert offer["from"] == {"id": sides.specialist.pk, "name": sides.specialist.get_full_name()}
    await _send(clinician, type="signal", description={"type": "answer", "sdp": "v=0 answer"})
    assert (await _next(specialist, "signal"))["description"]["type"] == "answer"
    for n in range(16):
        candidate = {"candidate": f"candidate:{n} 1 udp 2122260223 127.0.0.2 {50000 + n} typ host", "sdpMid": "0"}
        await _send(specialist, type="signal", candidate=candidate)
        assert (await _next(clinician, "signal"))["candidate"] == candidate
    # Nothing of it came back to the sender.
    assert all(m["type"] != "signal" for m in await _nothing_but_presence(specialist))

    await _send(clinician, type="hangup", reason="hangup")
    hangup = await _next(specialist, "hangup")
    assert hangup["reason"] == "hangup" and hangup["call"]["state"] == "ended"
    call = await sync_to_async(Call.objects.get)(pk=ringing["call"]["id"])
    assert (call.state, call.answered_by_id, call.ended_by_id) == ("ended", sides.clinician.pk, sides.clinician.pk)
    assert call.duration is not None
    trail = await sync_to_async(list)(
        AuditEntry.objects.filter(object_type="consultations.call", object_id=str(call.pk)).values_list(
            "actor_username", "detail"
        )
    )
    assert (sides.specialist.username, "rang for 30 s") in trail
    assert (sides.clinician.username, "answered") in trail
    assert (sides.clinician.username, "ended: hangup") in trail
    for socket in (specialist, clinician, notifications):
        await socket.disconnect()


async def _next_kind(socket: WebsocketCommunicator, kind: str) -> dict[str, Any]:
    while True:
        event = await socket.receive_json_from(timeout=WAIT)
        if event.get("kind") == kind:
            return event


async def test_strangers_are_refused_before_the_socket_opens(sides: Sides, network_b: Network) -> None:
    colleague = await sync_to_async(StaffFactory)(hospital=sides.network.central, role=Staff.Role.SPECIALIST)
    admin = await sync_to_async(StaffFactory)(hospital=sides.network.regional, role=Staff.Role.HOSPITAL_ADMIN)
    kazan = await sync_to_async(StaffFactory)(hospital=network_b.central, role=Staff.Role.SPECIALIST)
    kostroma = await sync_to_async(StaffFactory)(hospital=network_b.regional, role=Staff.Role.CLINICIAN)

    assert (await _open(AnonymousUser(), sides.consultation.pk))[1:] == (False, 4401)
    # A specialist of the same hospital who did not take the request, the regional hospital's admin,
    # and both hospitals of another network.
    for stranger in (colleague.user, admin.user, kazan.user, kostroma.user):
        assert (await _open(stranger, sides.consultation.pk))[1:] == (False, 4403), stranger
    # A forged consultation id is refused exactly like another hospital's.
    assert (await _open(sides.clinician, 987654))[1:] == (False, 4403)
    # The taken specialist without the second factor in this session.
    socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/consultations/{sides.consultation.pk}/call/")
    socket.scope["user"], socket.scope["session"] = sides.specialist, {}
    assert await socket.connect() == (False, 4403)
    refused = await sync_to_async(
        AuditEntry.objects.filter(action="permission_denied", object_type="consultations.call").count
    )()
    assert refused == 6  # each refusal but the anonymous one, who has no name to write down


async def test_a_socket_from_another_site_is_refused(sides: Sides) -> None:
    from mhospital.asgi import application

    client = await sync_to_async(verified_login)(Client(), sides.clinician)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode()
    path = f"/ws/consultations/{sides.consultation.pk}/call/"
    for origin, allowed in ((b"http://testserver", True), (b"https://evil.example", False)):
        socket = WebsocketCommunicator(application, path, headers=[(b"origin", origin), (b"cookie", cookie)])
        connected, _ = await socket.connect()
        assert connected is allowed, origin
        await socket.disconnect()


async def test_bad_messages_get_an_error_and_never_reach_the_peer(answered) -> None:  # type: ignore[no-untyped-def]
    specialist, clinician, _ = answered
    for text, code in (
        ("this is not json", "malformed"),
        ("[1, 2]", "malformed"),
        (json.dumps({"v": 1, "type": "shout"}), "unknown_type"),
        (json.dumps({"v": 2, "type": "signal"}), "version"),
        (json.dumps({"v": 1, "type": "signal", "description": {"type": "bogus"}}), "malformed"),
        (json.dumps({"v": 1, "type": "signal", "to": 987654, "candidate": {}}), "no_such_peer"),
        (json.dumps({"v": 1, "type": "chat", "text": ""}), "malformed"),
    ):
        await specialist.send_to(text_data=text)
        error = await _next(specialist, "error")
        assert error["code"] == code, text
        assert error["message"]
    await specialist.send_to(bytes_data=b"\x00\x01")
    assert (await _next(specialist, "error"))["code"] == "text_only"
    assert await clinician.receive_nothing(timeout=0.3)
    # Still open after all that.
    await _send(specialist, type="ping")
    assert (await _next(specialist, "pong"))["type"] == "pong"


async def test_an_oversized_message_is_refused_and_closes_only_its_socket(answered) -> None:  # type: ignore[no-untyped-def]
    specialist, clinician, _ = answered
    await _send(specialist, type="signal", description={"type": "offer", "sdp": "x" * (10 * 2**20)})
    assert (await _next(specialist, "error"))["code"] == "too_large"
    assert (await specialist.receive_output(timeout=WAIT)) == {"type": "websocket.close", "code": 4413}
    received = await _nothing_but_presence(clinician)
    assert [m["type"] for m in received] == ["presence"] and received[0]["state"] == "reconnecting"
    await _send(clinician, type="ping")
    assert (await _next(clinician, "pong"))["type"] == "pong"


async def test_a_flood_is_cut_off_without_touching_the_peer(answered, settings) -> None:  # type: ignore[no-untyped-def]
    specialist, clinician, _ = answered
    started = asyncio.get_running_loop().time()
    for _ in range(1000):
        await _send(specialist, type="signal", candidate={"candidate": "candidate:1 1 udp 1 127.0.0.2 1 typ host"})
    codes = []
    while True:
        output = await specialist.receive_output(timeout=WAIT)
        if output["type"] == "websocket.close":
            assert output["code"] == 4429
            break
        codes.append(json.loads(output["text"]).get("code"))
    assert "rate_limited" in codes
    # The peer got what the socket was allowed to send, at most the burst, and is still served.
    relayed = [m for m in await _nothing_but_presence(clinician) if m["type"] == "signal"]
    allowed = django_settings.CALL_RATE_BURST + django_settings.CALL_RATE_PER_SECOND * (
        asyncio.get_running_loop().time() - started
    )
    assert 0 < len(relayed) <= allowed
    await _send(clinician, type="ping")
    assert (await _next(clinician, "pong"))["type"] == "pong"


async def test_a_signal_outside_an_answered_call_is_refused(sides: Sides) -> None:
    specialist, _ = await _join(sides.specialist, sides.consultation.pk)
    clinician, _ = await _join(sides.clinician, sides.consultation.pk)
    await _send(specialist, type="signal", description={"type": "offer", "sdp": "v=0"})
    assert (await _next(specialist, "error"))["code"] == "not_in_call"
    assert all(m["type"] != "signal" for m in await _nothing_but_presence(clinician))
    await specialist.disconnect()
    await clinician.disconnect()


async def test_access_withdrawn_while_the_page_is_open_stops_its_next_invite(sides: Sides) -> None:
    """The request was handed to another specialist after this one's call page opened: the page may not ring."""
    specialist, _ = await _join(sides.specialist, sides.consultation.pk)
    colleague = await sync_to_async(StaffFactory)(hospital=sides.network.central, role=Staff.Role.SPECIALIST)
    await sync_to_async(Consultation.objects.filter(pk=sides.consultation.pk).update)(assigned_to=colleague.user)
    await _send(specialist, type="invite", lifetime=30)
    refused = await _next(specialist, "error")
    assert refused["code"] == "call_refused" and "no longer have access" in refused["message"]
    assert not await sync_to_async(Call.objects.filter(consultation=sides.consultation).exists)()
    await specialist.disconnect()


async def test_a_hung_peer_is_noticed_within_seconds(answered, settings) -> None:  # type: ignore[no-untyped-def]
    # The heartbeat period is read when the socket opens: reopen the clinician's with a short one.
    specialist, clinician, _call_id = answered
    settings.CALL_HEARTBEAT_SECONDS = 0.2
    await clinician.disconnect()
    hung, _ = await _join(await sync_to_async(User.objects.get)(pk=clinician.scope["user"].pk), call_id_room(answered))
    loop = asyncio.get_running_loop()
    started = loop.time()
    # The specialist's page keeps pinging; the clinician's has hung (sends nothing).
    while True:
        await _send(specialist, type="ping")
        message = await specialist.receive_json_from(timeout=2)
        if message["type"] == "presence" and message["state"] == "reconnecting":
            break
    assert loop.time() - started < 2
    assert (await _next(hung, "error"))["code"] == "silent"
    assert (await hung.receive_output(timeout=2)) == {"type": "websocket.close", "code": 4408}


async def test_a_slow_message_of_its_own_does_not_count_as_the_page_falling_silent(
    sides: Sides, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The server took longer than three heartbeat periods over the page's own message (its database was
    busy): the page's pings waited behind it, unread, so silence counts again only from the answer on."""
    settings.CALL_HEARTBEAT_SECONDS = 0.3  # silent after 0.9 s; the server looks every 0.3 s
    invite = calls.call_invite

    def slow_invite(**kwargs: Any) -> Call:
        time.sleep(1.5)
        return invite(**kwargs)

    monkeypatch.setattr(calls, "call_invite", slow_invite)
    specialist, _ = await _join(sides.specialist, sides.consultation.pk)
    await _send(specialist, type="invite", lifetime=30)
    assert (await _next(specialist, "ringing"))["call"]["state"] == "ringing"
    # Half a second after the answer, the page is not silent: it has been listened to for only that long.
    assert await specialist.receive_nothing(timeout=0.5)
    # A page that really stays silent is still noticed.
    assert (await _next(specialist, "error", timeout=3))["code"] == "silent"
    assert (await specialist.receive_output(timeout=2)) == {"type": "websocket.close", "code": 4408}


async def test_a_page_gone_before_it_is_told_it_is_silent_still_leaves_the_call(
    answered, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The server notices the silence after the page's connection is gone: writing to it fails (as uvicorn's
    ClientDisconnected does), and the peer must still hear that the other side is reconnecting."""
    specialist, clinician, _call_id = answered
    settings.CALL_HEARTBEAT_SECONDS = 0.2
    await clinician.disconnect()
    told = CallConsumer._error

    async def gone(self: CallConsumer, code: str, message: str) -> None:
        if code == "silent":
            raise OSError("the client has disconnected")
        await told(self, code, message)

    monkeypatch.setattr(CallConsumer, "_error", gone)
    _hung, _ = await _join(await sync_to_async(User.objects.get)(pk=clinician.scope["user"].pk), call_id_room(answered))
    heard = []  # the page leaving and coming back, then (the page hanging) its silence
    while not heard or heard[-1] != "joined":
        await _send(specialist, type="ping")  # the specialist's page keeps pinging throughout
        message = await specialist.receive_json_from(timeout=2)
        heard += [message["state"]] if message["type"] == "presence" else []
    for _ in range(40):  # two seconds of the specialist's pings, within the socket's rate limit
        await _send(specialist, type="ping")
        message = await specialist.receive_json_from(timeout=2)
        if message["type"] == "presence":
            heard.append(message["state"])
            break
        await asyncio.sleep(0.05)
    assert heard[-1] == "reconnecting"


def call_id_room(answered: tuple[WebsocketCommunicator, WebsocketCommunicator, int]) -> int:
    return int(answered[0].scope["path"].split("/")[3])


async def test_an_unanswered_call_rings_out_as_missed(sides: Sides, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CALL_RING_MIN_SECONDS = 1
    specialist, _ = await _join(sides.specialist, sides.consultation.pk)
    await _send(specialist, type="invite", lifetime=1)
    call_id = (await _next(specialist, "ringing"))["call"]["id"]
    missed = await _next(specialist, "hangup", timeout=4)
    assert missed["reason"] == "timeout" and missed["call"]["state"] == "missed"
    assert await sync_to_async(lambda: Call.objects.get(pk=call_id).state)() == "missed"
    told = await sync_to_async(list)(
        Notification.objects.filter(user=sides.clinician).values_list("message", flat=True)
    )
    assert "Missed video call from %(name)s on consultation #%(id)s" in told
    await specialist.disconnect()


async def test_the_sweep_settles_a_call_whose_caller_left(sides: Sides) -> None:
    """The caller closed the tab while it rang: no socket is left to time it out, the periodic sweep does."""
    call = await sync_to_async(_ringing_since)(sides, seconds=60)
    assert await sync_to_async(calls.calls_sweep)() == 1
    assert await sync_to_async(lambda: Call.objects.get(pk=call.pk).state)() == "missed"


def _ringing_since(sides: Sides, seconds: int) -> Call:
    from datetime import timedelta

    from django.utils import timezone

    return Call.objects.create(
        consultation=sides.consultation,
        started_by=sides.specialist,
        ring_until=timezone.now() - timedelta(seconds=seconds),
    )


async def test_a_reloaded_page_rejoins_the_same_call(answered, settings) -> None:  # type: ignore[no-untyped-def]
    specialist, clinician, call_id = answered
    user = clinician.scope["user"]
    await clinician.disconnect()
    away = await _next(specialist, "presence")
    assert away["state"] == "reconnecting" and away["user"]["id"] == user.pk

    again, welcome = await _join(user, call_id_room(answered))
    assert welcome["call"]["id"] == call_id and welcome["call"]["state"] == "active"
    assert [peer["id"] for peer in welcome["peers"]] == [specialist.scope["user"].pk]
    back = await _next(specialist, "presence")
    assert back["state"] == "joined" and back["user"]["id"] == user.pk
    await _send(specialist, type="signal", description={"type": "offer", "sdp": "v=0 renegotiate"})
    assert (await _next(again, "signal"))["description"]["sdp"] == "v=0 renegotiate"
    await again.disconnect()


async def test_a_call_left_past_the_grace_period_ends_as_lost(answered, settings) -> None:  # type: ignore[no-untyped-def]
    specialist, clinician, _call_id = answered
    settings.CALL_REJOIN_GRACE_SECONDS = 0.3
    await clinician.disconnect()
    ended = await _next(specialist, "hangup", timeout=WAIT)
    assert ended["reason"] == "connection_lost" and ended["call"]["state"] == "ended"


async def test_a_second_page_of_the_same_person_takes_over(answered) -> None:  # type: ignore[no-untyped-def]
    specialist, clinician, _call_id = answered
    newer, _welcome = await _join(clinician.scope["user"], call_id_room(answered))
    assert (await _next(clinician, "error"))["code"] == "replaced"
    assert (await clinician.receive_output(timeout=2)) == {"type": "websocket.close", "code": 4410}
    # The specialist's page hears of the new page (and would renegotiate with it).
    assert (await _next(specialist, "presence"))["state"] == "joined"
    await _send(specialist, type="signal", candidate={"candidate": "candidate:9 1 udp 1 127.0.0.2 9 typ host"})
    assert (await _next(newer, "signal"))["candidate"]["candidate"].startswith("candidate:9")
    await newer.disconnect()


async def test_a_guest_joins_when_invited_and_the_room_has_a_size(answered, settings) -> None:  # type: ignore[no-untyped-def]
    specialist, clinician, call_id = answered
    pk = call_id_room(answered)
    trainer = await sync_to_async(lambda: StaffFactory(role=Staff.Role.SPECIALIST).user)()
    assert (await _open(trainer, pk))[1:] == (False, 4403)  # not yet invited

    await sync_to_async(calls.call_guest_invite)(call_id=call_id, by=specialist.scope["user"], user=trainer)
    guest, welcome = await _join(trainer, pk)
    assert welcome["guest"] is True and {p["id"] for p in welcome["peers"]} == {
        specialist.scope["user"].pk,
        clinician.scope["user"].pk,
    }
    # With three in the room, a signal must say to whom; it reaches only that one.
    await _send(guest, type="signal", candidate={"candidate": "x"})
    assert (await _next(guest, "error"))["code"] == "no_such_peer"
    await _send(guest, type="signal", to=clinician.scope["user"].pk, candidate={"candidate": "to the clinician"})
    assert (await _next(clinician, "signal"))["candidate"]["candidate"] == "to the clinician"
    assert all(m["type"] != "signal" for m in await _nothing_but_presence(specialist))

    # The guest hangs up: the guest leaves, the call goes on.
    await _send(guest, type="hangup", reason="hangup")
    assert (await guest.receive_output(timeout=2)) == {"type": "websocket.close", "code": 1000}
    left = await _next(clinician, "presence")
    assert (left["user"]["id"], left["state"]) == (trainer.pk, "left")
    assert await sync_to_async(lambda: Call.objects.get(pk=call_id).state)() == "active"
    guest, _ = await _join(trainer, pk)

    settings.CALL_ROOM_SIZE = 3
    late = await sync_to_async(lambda: StaffFactory(role=Staff.Role.CLINICIAN).user)()
    await sync_to_async(calls.call_guest_invite)(call_id=call_id, by=specialist.scope["user"], user=late)
    assert (await _open(late, pk))[1:] == (False, 4409)
    await guest.disconnect()


async def test_two_sides_calling_each_other_at_once_meet_in_one_call(sides: Sides) -> None:
    specialist, _ = await _join(sides.specialist, sides.consultation.pk)
    clinician, _ = await _join(sides.clinician, sides.consultation.pk)
    await asyncio.gather(_send(specialist, type="invite"), _send(clinician, type="invite"))
    states = set()
    for socket in (specialist, clinician):
        while True:
            message = await socket.receive_json_from(timeout=WAIT)
            if message.get("call") and message["call"]["state"] == "active":
                states.add(message["call"]["id"])
                break
    assert len(states) == 1
    assert await sync_to_async(Call.objects.filter(consultation=sides.consultation).count)() == 1
    await specialist.disconnect()
    await clinician.disconnect()


async def test_a_decline_from_the_ringing_panel_reaches_the_caller(sides: Sides) -> None:
    specialist, _ = await _join(sides.specialist, sides.consultation.pk)
    await _send(specialist, type="invite")
    await _next(specialist, "ringing")
    client = await sync_to_async(verified_login)(Client(), sides.clinician)
    response = await sync_to_async(client.post)(
        f"/consultations/{sides.consultation.pk}/call/decline/", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 204
    declined = await _next(specialist, "decline")
    assert declined["from"]["id"] == sides.clinician.pk and declined["call"]["state"] == "declined"
    await specialist.disconnect()


async def test_no_call_on_a_consultation_that_is_not_open_to_one(sides: Sides) -> None:
    await sync_to_async(Consultation.objects.filter(pk=sides.consultation.pk).update)(state="concluded")
    specialist, _ = await _join(sides.specialist, sides.consultation.pk)
    await _send(specialist, type="invite")
    error = await _next(specialist, "error")
    assert error["code"] == "call_refused" and "accepted" in error["message"]
    assert not await sync_to_async(Call.objects.exists)()
    await specialist.disconnect()


async def test_declining_the_request_ends_its_call(answered, sides: Sides) -> None:  # type: ignore[no-untyped-def]
    _specialist, clinician, _call_id = answered
    await sync_to_async(services.consultation_move)(
        consultation=sides.consultation, move="decline", by=sides.specialist, note="Not our specialty"
    )
    ended = await _next(clinician, "hangup")
    assert ended["reason"] == "consultation_closed"


async def test_chat_in_the_call_is_kept_in_the_thread(answered, sides: Sides) -> None:  # type: ignore[no-untyped-def]
    specialist, clinician, _ = answered
    await _send(clinician, type="chat", text="ЭКГ загружена, посмотрите отведения V2–V4")
    line = await _next(specialist, "chat")
    assert line["text"] == "ЭКГ загружена, посмотрите отведения V2–V4" and line["from"]["id"] == sides.clinician.pk
    assert all(m["type"] != "chat" for m in await _nothing_but_presence(clinician))
    kept = await sync_to_async(
        lambda: list(Message.objects.filter(consultation=sides.consultation).values_list("body", flat=True))
    )()
    assert kept == ["ЭКГ загружена, посмотрите отведения V2–V4"]


async def test_turn_credentials_are_issued_per_user_and_expire(sides: Sides, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CALL_STUN_URLS = ["stun:turn.mhospital.local:3478"]
    settings.CALL_TURN_URLS = ["turn:turn.mhospital.local:3478?transport=udp"]
    settings.CALL_TURN_SECRET = "shared-with-coturn"
    socket, welcome = await _join(sides.clinician, sides.consultation.pk)
    stun, turn = welcome["ice_servers"]
    assert stun == {"urls": ["stun:turn.mhospital.local:3478"]}
    expiry, user = turn["username"].split(":")
    assert int(user) == sides.clinician.pk
    import time

    assert time.time() < int(expiry) <= time.time() + django_settings.CALL_TURN_TTL_SECONDS + 5
    expected = hmac.new(b"shared-with-coturn", turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(expected).decode()
    await socket.disconnect()


async def test_no_turn_configured_means_host_candidates_only(sides: Sides) -> None:
    socket, welcome = await _join(sides.clinician, sides.consultation.pk)
    assert welcome["ice_servers"] == []
    assert "shared" not in json.dumps(welcome)
    await socket.disconnect()


async def test_a_guest_rings_when_invited(answered, sides: Sides) -> None:  # type: ignore[no-untyped-def]
    _specialist, _, call_id = answered
    trainer = await sync_to_async(
        lambda: StaffFactory(hospital=sides.network.central, role=Staff.Role.SPECIALIST).user
    )()
    ring = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/notifications/")
    ring.scope["user"], ring.scope["session"] = trainer, await sync_to_async(_session)(trainer)
    assert (await ring.connect())[0]
    await sync_to_async(calls.call_guest_invite)(call_id=call_id, by=sides.specialist, user=trainer)
    event = await _next_kind(ring, "call")
    assert event["state"] == "ringing" and event["consultation"] == sides.consultation.pk
    assert await sync_to_async(CallGuest.objects.filter(call_id=call_id, user=trainer).exists)()
    await ring.disconnect()


async def test_a_full_channel_tells_the_sender_busy_and_keeps_its_socket(
    answered: tuple[WebsocketCommunicator, WebsocketCommunicator, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from channels.exceptions import ChannelFull
    from channels.layers import get_channel_layer

    specialist, clinician, _ = answered
    layer = get_channel_layer()
    real_send = layer.send

    async def full_for_relays(channel: str, message: dict[str, Any]) -> None:
        if message.get("type") == "call.relay":  # the peer's process has CHANNELS_CAPACITY waiting already
            raise ChannelFull(channel)
        await real_send(channel, message)

    monkeypatch.setattr(layer, "send", full_for_relays)
    await _send(specialist, type="signal", description={"type": "offer", "sdp": "v=0 offer"})
    busy = await _next(specialist, "error")
    assert busy["code"] == "busy" and "not delivered" in busy["message"]
    # The socket stays open and the signal goes through once the channel has room again.
    monkeypatch.setattr(layer, "send", real_send)
    await _send(specialist, type="signal", description={"type": "offer", "sdp": "v=0 offer"})
    assert (await _next(clinician, "signal"))["description"]["sdp"] == "v=0 offer"
