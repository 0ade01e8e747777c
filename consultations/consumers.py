"""WebRTC signalling for a consultation's video call: one room per consultation, one socket per person in it.

Messages are JSON objects of the envelope `{"v": 1, "type": ...}`. From the browser:

    invite {lifetime}        ring the other side for `lifetime` seconds (clamped by settings)
    accept | decline         answer a call that rings you
    cancel                   the caller gives up while it rings
    hangup {reason}          end the call; reason "ice_failure" marks it failed, anything else a hang-up
    signal {to?, description | candidate}   SDP or an ICE candidate for one peer (`to`: a user id, needed
                             only when more than one peer is in the room)
    chat {text}              a line of text, kept in the consultation's thread
    ping                     a heartbeat; any message counts as one

From the server: `welcome` (you, your peers with the polite role of each pair, the call, ICE servers, the
limits), `presence` (a peer joined, left or is reconnecting), `invite`, `ringing`, `accept`, `decline`,
`cancel`, `hangup` (each with the call's new state and `from`, the person who did it, stamped by the server),
`call` (the new state, to the socket whose message changed it), `signal`, `chat`, `pong`, and `error`
{code, message}. Nothing a socket sends is echoed back to it; unknown types get an error and go nowhere.

Signals go straight to the peer's channel (channel_layer.send), never through the group; presence and call
events go through the room's group. Both work across ASGI processes with channels-redis.
"""

import asyncio
import functools
import json
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeGuard, TypeVar

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from consultations import calls
from consultations.models import Call
from consultations.services import message_post
from hospitals.audit import audit_record
from hospitals.consumers import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, second_factor_missing
from hospitals.errors import Refused
from hospitals.models import AuditEntry, User
from hospitals.scoping import memberships_remembered

VERSION = 1
CLOSE_SILENT = 4408  # no heartbeat for three periods: the peer is gone
CLOSE_ROOM_FULL = 4409
CLOSE_REPLACED = 4410  # the same person opened the call elsewhere
CLOSE_TOO_LARGE = 4413
CLOSE_FLOOD = 4429
DESCRIPTION_TYPES = {"offer", "answer", "pranswer", "rollback"}
# RTCIceCandidateInit: each field and the types it may have.
CANDIDATE_FIELDS: dict[str, tuple[type, ...]] = {
    "candidate": (str,),
    "sdpMid": (str, type(None)),
    "sdpMLineIndex": (int, type(None)),
    "usernameFragment": (str, type(None)),
}
LIFECYCLE = {"invite", "accept", "decline", "cancel", "hangup"}


P = ParamSpec("P")
R = TypeVar("R")


def _db(work: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`database_sync_to_async`, with each person's hospital membership fetched once in the unit of work: a
    socket's message asks for it in the access rules, the consultation's side and the audit row."""

    @functools.wraps(work)
    def remembering(*args: P.args, **kwargs: P.kwargs) -> R:
        with memberships_remembered():
            return work(*args, **kwargs)

    return database_sync_to_async(remembering)


def _audit(user: User, action: str, outcome: str, consultation_id: object, patient_id: object, detail: str) -> None:
    audit_record(
        request=None,
        action=action,
        outcome=outcome,
        object_type="consultations.call",
        object_id=consultation_id,
        patient_id=patient_id,
        user=user,
        detail=detail,
    )


class CallConsumer(AsyncJsonWebsocketConsumer):
    """The signalling of one person in one consultation's call room."""

    user: User
    consultation_id: int
    side: str | None  # calls.REQUESTER, calls.CONSULTANT, or None for a guest
    group: str
    me: dict[str, Any]
    peers: dict[int, str]  # user id -> channel, kept by presence events
    call: dict[str, Any] | None
    joined: bool = False
    busy: bool = False  # handling a message (its own, or the room's): its page's next ping waits behind it

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.consultation_id = self.scope["url_route"]["kwargs"]["pk"]
        self.group = calls.room_group(self.consultation_id)
        # Into the group before the room's table: no presence event of a page opening meanwhile is missed.
        await self.channel_layer.group_add(self.group, self.channel_name)
        admitted = await _db(self._open)()
        if isinstance(admitted, int):
            await self.channel_layer.group_discard(self.group, self.channel_name)
            await self.close(code=admitted)
            return
        replaced, people = admitted
        self.me = calls.person(user)
        self.bucket, self.bucket_at, self.dropped = float(settings.CALL_RATE_BURST), time.monotonic(), 0
        self.heard = time.monotonic()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.joined = True
        if replaced:
            await self.channel_layer.send(replaced, {"type": "call.replaced"})
        await self.accept()
        await self.send_json(
            {
                "v": VERSION,
                "type": "welcome",
                "you": self.me,
                "guest": self.side is None,
                "peers": [{**person, "polite": self._polite(peer)} for peer, person in people.items()],
                "call": self.call,
                "ice_servers": calls.ice_servers(user.pk),
                "limits": {
                    "heartbeat_seconds": settings.CALL_HEARTBEAT_SECONDS,
                    "message_bytes": settings.CALL_MAX_MESSAGE_BYTES,
                    "rejoin_grace_seconds": settings.CALL_REJOIN_GRACE_SECONDS,
                    "ring_seconds": settings.CALL_RING_SECONDS,
                },
            }
        )
        await self.channel_layer.group_send(
            self.group,
            {"type": "call.presence", "user": self.me, "channel": self.channel_name, "state": "joined"},
        )
        # Silence counts from here: opening took its time (the database, other pages opening), and pings the
        # page sent meanwhile wait behind this handler.
        self.heard = time.monotonic()
        _heartbeats().watch(self)
        call = self.call
        if call is not None and call["state"] == Call.State.RINGING and call["started_by"]["id"] == user.pk:
            self._spawn(self._expire_ring(call))

    def _open(self) -> tuple[str | None, dict[int, dict[str, Any]]] | int:
        """Admit the socket and take its place in the room (see `_enter`), or the close code that refuses it."""
        admitted = self._admit()
        return admitted if isinstance(admitted, int) else self._enter(admitted)

    def _admit(self) -> calls.Room | int:
        """The user's place in the room, or the close code that refuses this socket: the room's access rules,
        the second factor, the room's size. Refusals are audited. The socket keeps only the room's ids (a
        consultation with its patient and hospitals is kilobytes, times thousands of sockets); what it does
        later fetches the room again, and so sees access that has been withdrawn meanwhile."""
        pk = self.consultation_id
        room = calls.room_access(user=self.user, consultation_id=pk)
        if room is None or second_factor_missing(self.user, self.scope.get("session")):
            _audit(
                self.user, AuditEntry.Action.PERMISSION_DENIED, AuditEntry.Outcome.DENIED, pk, "", "call room refused"
            )
            return CLOSE_FORBIDDEN
        self.side = room.side
        if calls.presence_count(consultation_id=pk, user_id=self.user.pk) >= settings.CALL_ROOM_SIZE - 1:
            return CLOSE_ROOM_FULL
        return room

    def _room(self) -> calls.Room:
        """The room as it stands now; refused if the user's access to it has gone since the socket opened."""
        room = calls.room_access(user=self.user, consultation_id=self.consultation_id)
        if room is None:
            raise calls.CallRefused(_("You no longer have access to this consultation's call."))
        return room

    def _enter(self, room: calls.Room) -> tuple[str | None, dict[int, dict[str, Any]]]:
        """Take a place in the room; returns the socket this one replaces and who else is in, by user id."""
        consultation = room.consultation
        replaced, self.peers = calls.presence_join(
            consultation_id=consultation.pk, user_id=self.user.pk, channel=self.channel_name
        )
        _audit(
            self.user,
            AuditEntry.Action.VIEW,
            AuditEntry.Outcome.SUCCESS,
            consultation.pk,
            consultation.patient_id,
            "joined the call room as a guest" if room.is_guest else "joined the call room",
        )
        people = {user.pk: calls.person(user) for user in User.objects.filter(pk__in=list(self.peers))}
        self.call = calls.call_view(calls.call_live(consultation.pk))
        return replaced, people

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch first closes stale database connections in a worker thread: a thread hop for
        every frame and every relayed signal, most of the relay's cost under load. Here nothing touches the
        database outside database_sync_to_async, which closes them itself around each use, so it is skipped."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        listening, started = hasattr(self, "heard"), time.monotonic()
        self.busy = True  # the server, not the page, is behind while this runs: see Heartbeats
        try:
            await handler(message)
        finally:
            self.busy = False
        if listening:
            # Time this socket spent on its own handling is not the page's silence: the page's pings wait
            # unread behind it. So the silence so far moves on by that time; after a message from the page
            # (heard as the handling started), it counts from the handling's end.
            now = time.monotonic()
            self.heard = min(now, self.heard + now - started)

    def _polite(self, peer_id: int) -> bool:
        """Of two peers, the one with the higher user id yields in a glare (perfect negotiation's polite)."""
        return bool(self.user.pk > peer_id)

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def _leave(self, state: str = "") -> None:
        if not self.joined:
            return
        self.joined = False
        for task in list(self.tasks):
            if task is not asyncio.current_task():
                task.cancel()
        await self.channel_layer.group_discard(self.group, self.channel_name)
        _heartbeats().forget(self)
        left = await database_sync_to_async(calls.presence_leave)(
            consultation_id=self.consultation_id, user_id=self.user.pk, channel=self.channel_name
        )
        if left:
            in_call = self.call is not None and self.call["state"] == Call.State.ACTIVE
            await self.channel_layer.group_send(
                self.group,
                {
                    "type": "call.presence",
                    "user": self.me,
                    "channel": self.channel_name,
                    "state": state or ("reconnecting" if in_call else "left"),
                },
            )

    async def _close(self, code: int, state: str = "") -> None:
        await self._leave(state)
        await self.close(code=code)

    # From the browser.

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self._within_rate():
            return
        self.heard = time.monotonic()
        if text_data is None:
            await self._error("text_only", _("Send JSON text messages."))
            return
        if len(text_data) > settings.CALL_MAX_MESSAGE_BYTES:
            await self._error(
                "too_large",
                _("A message may be at most %(size)s KB.") % {"size": settings.CALL_MAX_MESSAGE_BYTES // 1024},
            )
            await self._close(CLOSE_TOO_LARGE)
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self._error("malformed", _("A message is a JSON object with a “type”."))
            return
        if message.get("v", VERSION) != VERSION:
            await self._error("version", _("This server speaks version %(v)s of the call protocol.") % {"v": VERSION})
            return
        kind = message.get("type")
        if not isinstance(kind, str):  # a list or an object here cannot even be looked up
            await self._error("malformed", _("A message is a JSON object with a “type”."))
            return
        if kind == "ping":
            await self.send_json({"v": VERSION, "type": "pong"})
        elif kind == "signal":
            await self._signal(message)
        elif kind in LIFECYCLE:
            await self._lifecycle(str(kind), message)
        elif kind == "chat":
            await self._chat(message)
        else:
            await self._error("unknown_type", _("Unknown message type “%(type)s”.") % {"type": str(kind)[:40]})

    def _within_rate(self) -> bool:
        """A token bucket per socket; a flood is answered once, then closed."""
        now = time.monotonic()
        self.bucket = min(
            float(settings.CALL_RATE_BURST), self.bucket + (now - self.bucket_at) * settings.CALL_RATE_PER_SECOND
        )
        self.bucket_at = now
        if self.bucket >= 1:
            self.bucket -= 1
            return True
        self.dropped += 1
        if self.dropped == 1:
            self._spawn(self._error("rate_limited", _("Too many messages: slow down; these were dropped.")))
        elif self.dropped >= settings.CALL_RATE_BURST:
            self._spawn(self._close(CLOSE_FLOOD))
        return False

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"v": VERSION, "type": "error", "code": code, "message": message})

    async def _signal(self, message: dict[str, Any]) -> None:
        if self.call is None or self.call["state"] != Call.State.ACTIVE:
            await self._error("not_in_call", _("Signals flow once the call has been answered."))
            return
        to = message.get("to")
        if to is None and len(self.peers) == 1:
            to = next(iter(self.peers))
        channel = self.peers.get(to) if isinstance(to, int) else None
        if channel is None:
            await self._error("no_such_peer", _("That person is not in this call."))
            return
        relayed: dict[str, Any] = {"v": VERSION, "type": "signal", "from": self.me}
        description, candidate = message.get("description"), message.get("candidate")
        if _is_description(description) and candidate is None:
            relayed["description"] = {"type": description["type"], "sdp": str(description.get("sdp", ""))}
        elif _is_candidate(candidate) and description is None:
            # Only RTCIceCandidateInit's own fields go on, each of its type: the peer's browser builds an
            # RTCIceCandidate from it, and whatever else a sender put in stays here.
            relayed["candidate"] = {key: candidate[key] for key in CANDIDATE_FIELDS if key in candidate}
        else:
            await self._error("malformed", _("A signal carries a session description or an ICE candidate."))
            return
        try:
            await self.channel_layer.send(channel, {"type": "call.relay", "payload": relayed})
        except ChannelFull:  # the peer's server is behind: tell the sender rather than lose the socket
            await self._error("busy", _("The call server is busy and this signal was not delivered: send it again."))

    async def _lifecycle(self, kind: str, message: dict[str, Any]) -> None:
        if kind == "hangup" and self.side is None:  # a guest leaves; the call goes on between its two sides
            await self._close(1000, state="left")
            return
        try:
            call = await _db(self._lifecycle_do)(kind, message)
        except Refused as refusal:
            await self._error(refusal.code, str(refusal))
            return
        if kind == "invite" and call.state == Call.State.RINGING:
            self._spawn(self._expire_ring(calls.call_view(call)))

    def _lifecycle_do(self, kind: str, message: dict[str, Any]) -> Call:
        origin, user = self.channel_name, self.user
        if kind == "invite":
            lifetime = message.get("lifetime")
            lifetime = lifetime if isinstance(lifetime, int) else settings.CALL_RING_SECONDS
            return calls.call_invite(room=self._room(), by=user, lifetime=lifetime, origin=origin)
        live = calls.call_live(self.consultation_id)
        if live is None:
            raise calls.CallRefused(_("There is no call under way on this consultation."))
        if kind == "accept":
            return calls.call_accept(call_id=live.pk, by=user, origin=origin)
        if kind == "decline":
            return calls.call_decline(call_id=live.pk, by=user, origin=origin)
        if kind == "cancel" and live.started_by_id != user.pk:
            raise calls.CallRefused(_("Only the caller cancels a ringing call."))
        reason = message.get("reason")
        failed = kind == "hangup" and reason == Call.EndReason.ICE_FAILURE
        return calls.call_hangup(
            call_id=live.pk,
            by=user,
            reason=Call.EndReason.ICE_FAILURE if failed else Call.EndReason.HANGUP,
            origin=origin,
        )

    async def _chat(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 4000:
            await self._error("malformed", _("A chat message is text of 1 to 4000 characters."))
            return
        try:
            posted = await _db(self._chat_post)(text.strip())
        except Refused as refusal:
            await self._error(refusal.code, str(refusal))
            return
        line = {"v": VERSION, "type": "chat", "from": self.me, "text": posted.body, "at": posted.created_at.isoformat()}
        await self.channel_layer.group_send(
            self.group, {"type": "call.event", "payload": line, "origin": self.channel_name}
        )

    def _chat_post(self, text: str) -> Any:
        return message_post(consultation=self._room().consultation, by=self.user, body=text)

    # Timers.

    async def _silent(self) -> None:
        """No heartbeat for three periods (see Heartbeats): the page is gone."""
        try:
            await self._error("silent", _("No heartbeat from this page: the connection is considered lost."))
            await self._close(CLOSE_SILENT)
        except OSError:  # so gone it cannot be written to (uvicorn's ClientDisconnected): leave all the same
            await self._leave()

    async def _expire_ring(self, call: dict[str, Any] | None) -> None:
        """The caller's socket settles its own call when it rings out (the periodic sweep covers a closed tab)."""
        if call is None:
            return
        until = datetime.fromisoformat(call["ring_until"])
        await asyncio.sleep(max(0.0, (until - timezone.now()).total_seconds()) + 0.05)
        await database_sync_to_async(calls.call_expire)(call_id=call["id"])

    async def _check_lost(self, call_id: int) -> None:
        await asyncio.sleep(settings.CALL_REJOIN_GRACE_SECONDS + 0.05)
        await database_sync_to_async(calls.call_lost)(call_id=call_id)

    # From the room (channel layer).

    async def call_presence(self, event: dict[str, Any]) -> None:
        person, state = event["user"], event["state"]
        if event["channel"] == self.channel_name:
            return
        if state == "joined":
            self.peers[person["id"]] = event["channel"]
        elif self.peers.get(person["id"]) == event["channel"]:
            del self.peers[person["id"]]
        else:
            return  # an older socket of someone already back: nothing changed for this page
        if state == "reconnecting" and self.call is not None:
            self._spawn(self._check_lost(self.call["id"]))
        payload = {"v": VERSION, "type": "presence", "user": person, "state": state}
        if state == "joined":
            payload["polite"] = self._polite(person["id"])
        await self.send_json(payload)

    async def call_event(self, event: dict[str, Any]) -> None:
        payload = event["payload"]
        if "call" in payload:
            self.call = payload["call"]
        if event.get("origin") != self.channel_name:
            await self.send_json(payload)

    async def call_reply(self, event: dict[str, Any]) -> None:
        self.call = event["payload"].get("call", self.call)
        await self.send_json(event["payload"])

    async def call_relay(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])

    async def call_replaced(self, event: dict[str, Any]) -> None:
        await self._error("replaced", _("You opened this call on another page; this one has left it."))
        self.joined = False  # the newer socket owns the presence row now
        _heartbeats().forget(self)
        for task in list(self.tasks):
            task.cancel()
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.close(code=CLOSE_REPLACED)


def _is_description(value: Any) -> TypeGuard[dict[str, Any]]:
    """An RTCSessionDescriptionInit: {"type": "offer" | "answer" | …, "sdp": text}."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("type"), str)
        and value["type"] in DESCRIPTION_TYPES
        and isinstance(value.get("sdp", ""), str)
    )


def _is_candidate(value: Any) -> TypeGuard[dict[str, Any]]:
    """An RTCIceCandidateInit: a candidate line and the optional fields, each of its own type."""
    if not isinstance(value, dict) or not isinstance(value.get("candidate"), str):
        return False
    return all(
        isinstance(value[key], kinds) and not isinstance(value[key], bool)
        for key, kinds in CANDIDATE_FIELDS.items()
        if key in value
    )


class Heartbeats:
    """Who has gone silent: one task per event loop (a server process) checks every call socket's last sign of
    life each period, where a sleeping task per socket would cost a task and a timer each (about a kilobyte,
    times thousands of sockets). A socket silent for three periods is told so and closed; not while it is
    handling a message (a busy server holds the page's pings behind it, and that time is not counted)."""

    def __init__(self) -> None:
        self.sockets: set[CallConsumer] = set()
        self.task: asyncio.Task[None] | None = None

    def watch(self, consumer: CallConsumer) -> None:
        self.sockets.add(consumer)
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    def forget(self, consumer: CallConsumer) -> None:
        self.sockets.discard(consumer)

    async def _run(self) -> None:
        while self.sockets:
            period = settings.CALL_HEARTBEAT_SECONDS
            await asyncio.sleep(min(period, 1.0))  # a look at every socket is cheap; a lost page is seen soon
            now = time.monotonic()
            silent = [socket for socket in self.sockets if not socket.busy and now - socket.heard > 3 * period]
            for consumer in silent:
                self.sockets.discard(consumer)
                consumer._spawn(consumer._silent())


_watchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Heartbeats]" = weakref.WeakKeyDictionary()


def _heartbeats() -> Heartbeats:
    loop = asyncio.get_running_loop()
    watcher = _watchers.get(loop)
    if watcher is None:
        watcher = _watchers[loop] = Heartbeats()
    return watcher
