from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from hospitals.models import Notification
from hospitals.scoping import request_membership, request_scope


def _through_the_gate(request: HttpRequest) -> bool:
    """Signed in, with the second factor where the role asks for one: only then are the navigation, the
    alerts banner and the live badges shown (on the code page they would fetch pages the gate refuses)."""
    user: Any = request.user
    if not user.is_authenticated:
        return False
    verified = getattr(user, "is_verified", None)  # OTPMiddleware's
    return verified is None or bool(verified()) or not request_scope(request).needs_second_factor


def membership(request: HttpRequest) -> dict[str, Any]:
    """The signed-in user's staff record and scope, for the role-aware navigation."""
    return {
        "signed_in": SimpleLazyObject(lambda: _through_the_gate(request)),
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
