"""The API's house rules, read by DRF's settings: who may call, and one format for every error.

Kept apart from the API views: DRF imports this module while it is still starting up.
"""

from typing import TYPE_CHECKING, Any

from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, permissions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from hospitals.errors import Refused
from hospitals.scoping import request_scope

if TYPE_CHECKING:
    from rest_framework.views import APIView


class SignedInWithSecondFactor(permissions.BasePermission):
    """Signed in; a browser session of a specialist or admin has also confirmed the second factor.
    (An API token can only be made from such a session.)"""

    message = _("Sign in first; specialists and admins also confirm their second factor.")

    def has_permission(self, request: Request, view: "APIView") -> bool:
        user: Any = request.user
        if not (user and user.is_authenticated):
            return False
        if isinstance(request.successful_authenticator, SessionAuthentication):
            return bool(user.is_verified()) or not request_scope(request._request).needs_second_factor
        return True


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as {"code": stable code, "detail": a sentence, "errors": per-field sentences}."""
    if isinstance(exc, Refused):
        return Response({"code": exc.code, "detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "code": "invalid",
            "detail": _("Some fields need correcting; nothing was saved."),
            "errors": response.data,
        }
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {"code": codes if isinstance(codes, str) else "error", "detail": str(exc.detail)}
    return response
