"""Live notifications for a signed-in user: one socket per open page."""

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device

from hospitals import events
from hospitals.scoping import Scope, scope_for

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_SESSION_ENDED = 4408


def _verified(user: Any, device_id: str | None) -> bool:
    """The same test as django-otp's middleware: the session names a confirmed device of this user."""
    device = Device.from_persistent_id(device_id) if device_id else None
    return device is not None and device.user_id == user.pk and device.confirmed


def second_factor_missing(user: Any, session: Any) -> bool:
    """The user's role asks for a second factor and this socket's session has not passed it."""
    return scope_for(user).needs_second_factor and not _verified(user, (session or {}).get(DEVICE_ID_SESSION_KEY))


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    """Joins the user's own group and their hospital's group; later issues push events there."""

    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        scope: Scope = await database_sync_to_async(scope_for)(user)
        session = self.scope.get("session") or {}
        if scope.user_id is None or (
            scope.needs_second_factor
            and not await database_sync_to_async(_verified)(user, session.get(DEVICE_ID_SESSION_KEY))
        ):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.groups_joined = [events.user_group(user.pk)]
        if scope.hospital_id is not None:
            self.groups_joined.append(events.hospital_group(scope.hospital_id))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Clients only listen here; anything they send is answered with an error."""
        await self.send_json({"type": "error", "code": "read_only", "message": "This socket only delivers events."})

    async def session_end(self, event: dict[str, Any]) -> None:
        await self.close(code=CLOSE_SESSION_ENDED)

    async def notify(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])
