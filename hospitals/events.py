"""Channels group names and the events hospitals/ pushes to open pages."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def hospital_group(hospital_id: int) -> str:
    return f"hospital.{hospital_id}"


def session_ended(user_id: int) -> None:
    """Close every open socket of a user (sent after a deactivation commits)."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(user_group(user_id), {"type": "session.end"})


def notifications_changed(user_ids: set[int]) -> None:
    """Tell each user's open pages their new unread count."""
    from hospitals.models import Notification

    layer = get_channel_layer()
    if layer is None:
        return
    for user_id in user_ids:
        unread = Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()
        payload = {"kind": "notification", "unread": unread}
        async_to_sync(layer.group_send)(user_group(user_id), {"type": "notify", "payload": payload})
