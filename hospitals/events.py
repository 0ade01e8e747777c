"""Channels group names, the events hospitals/ pushes to open pages, and `publish` for sending several."""

import asyncio
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db.models import Count

Sends = Iterable[tuple[str, dict[str, Any]]]


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def hospital_group(hospital_id: int) -> str:
    return f"hospital.{hospital_id}"


def publish(groups: Sends = (), channels: Sends = ()) -> None:
    """Send messages to groups and to single channels from synchronous code, in one trip to the event loop
    with the sends under way together. Each trip from a worker thread waits its turn on the loop, which is
    busy under load, and sends to different places need no order among them: give each place once. Every
    send is attempted; the first failure is raised after."""
    layer = get_channel_layer()
    groups, channels = list(groups), list(channels)
    if layer is None or not (groups or channels):
        return

    async def send_all() -> None:
        sent = await asyncio.gather(
            *(layer.group_send(group, message) for group, message in groups),
            *(layer.send(channel, message) for channel, message in channels),
            return_exceptions=True,
        )
        for outcome in sent:
            if isinstance(outcome, BaseException):
                raise outcome

    async_to_sync(send_all)()


def session_ended(user_id: int) -> None:
    """Close every open socket of a user (sent after a deactivation commits)."""
    publish([(user_group(user_id), {"type": "session.end"})])


def notifications_changed(user_ids: set[int]) -> None:
    """Tell each user's open pages their new unread count."""
    from hospitals.models import Notification

    if get_channel_layer() is None:
        return
    unread = dict(
        Notification.objects.filter(user_id__in=user_ids, read_at__isnull=True)
        .order_by()
        .values_list("user_id")
        .annotate(unread=Count("pk"))
    )
    publish(
        (user_group(user_id), {"type": "notify", "payload": {"kind": "notification", "unread": unread.get(user_id, 0)}})
        for user_id in user_ids
    )
