from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from hospitals.models import Notification
from hospitals.scoping import request_membership, request_scope


def membership(request: HttpRequest) -> dict[str, Any]:
    """The signed-in user's staff record and scope, for the role-aware navigation."""
    return {
        "membership": SimpleLazyObject(lambda: request_membership(request)),
        "scope": SimpleLazyObject(lambda: request_scope(request)),
        "unread": SimpleLazyObject(
            lambda: (
                Notification.objects.filter(user=request.user, read_at__isnull=True).count()
                if request.user.is_authenticated
                else 0
            )
        ),
    }
