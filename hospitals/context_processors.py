from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from hospitals.models import Staff
from hospitals.scoping import scope_for


def membership(request: HttpRequest) -> dict[str, Any]:
    """The signed-in user's staff record and scope, for the role-aware navigation."""
    user = getattr(request, "user", None)
    return {
        "membership": SimpleLazyObject(
            lambda: Staff.objects.select_related("hospital").filter(user=user).first() if user else None
        ),
        "scope": SimpleLazyObject(lambda: scope_for(user)),
    }
