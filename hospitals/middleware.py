"""Request id, no-store caching, ended sessions, the sign-in gates and the hospital's time zone."""

import ipaddress
import re
import time
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from hospitals.audit import Action, Outcome, audit_record
from hospitals.models import User
from hospitals.scoping import request_membership, request_scope

Handler = Callable[[HttpRequest], HttpResponse]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestContextMiddleware:
    """Tag each request with an id (the proxy's X-Request-ID if sane) for logs and the audit trail, and make
    sure the client address is an address: a misconfigured proxy must not crash the lockout's bookkeeping."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            request.META["REMOTE_ADDR"] = "0.0.0.0"  # noqa: S104 - "unknown", not a bind address
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response


class NoStoreMiddleware:
    """Cache-Control: no-store on every response that does not say otherwise: pages, API answers and errors
    carry patient data, which no browser or proxy should keep. Static files are answered before this
    (WhiteNoise); the viewer's frames choose their own private caching."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response


class IdleTimeoutMiddleware:
    """Slide a signed-in session's idle timeout forward, writing the session at most once a minute
    (SESSION_SAVE_EVERY_REQUEST would write it on every request)."""

    REFRESH_SECONDS = 60

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            if now - request.session.get("_seen", 0) >= self.REFRESH_SECONDS:
                request.session["_seen"] = now  # saving the session restarts its SESSION_COOKIE_AGE
        return self.get_response(request)


DEVICE_API = "/api/v1/device/"
AI_MODEL_ADMIN = "/admin/diagnostics/aimodel/"  # model files are far larger than any form


def body_limit_for(path: str) -> int:
    """The most bytes a request to `path` may carry: DICOMweb stores take whole studies in one request, and
    an AI model file is hundreds of megabytes."""
    if path.startswith("/dicom-web/"):
        return int(settings.DICOMWEB_MAX_REQUEST_BYTES)
    if path.startswith(DEVICE_API):
        return int(settings.DEVICE_MAX_REQUEST_BYTES)
    if path.startswith(AI_MODEL_ADMIN):
        return int(settings.AI_MODEL_MAX_BYTES)
    return int(settings.MAX_REQUEST_BYTES)


class UploadLimitMiddleware:
    """Refuse an oversized request before its body is read: a 2 GB file over a train's link must be told
    at once, not after it has filled the server's disk. Audited like any refused request."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = body_limit_for(request.path)
        if length <= limit:
            return self.get_response(request)
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            object_type="upload",
            detail=f"{request.method} {request.path[:200]}: {length} bytes refused",
        )
        if request.path.startswith(DEVICE_API):
            # A device reads JSON, not a page.
            detail = _(
                "The request is %(size)s bytes; a device may send at most %(limit)s bytes at once. Send fewer "
                "results per request."
            ) % {"size": length, "limit": limit}
            return JsonResponse({"code": "too_large", "detail": detail}, status=413)
        message = _("The upload is %(size)s MB; the limit is %(limit)s MB. Send a smaller file.") % {
            "size": length // 2**20,
            "limit": limit // 2**20,
        }
        return render(request, "413.html", {"message": message}, status=413)


class EndedSessionMiddleware:
    """A session that no longer holds (account deactivated, password changed, sessions ended) is refused,
    flushed and audited."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user_id = request.session.get(SESSION_KEY)
        if user_id is not None and not request.user.is_authenticated:
            audit_record(
                request=request,
                user=User.objects.filter(pk=user_id).first(),
                action=Action.PERMISSION_DENIED,
                outcome=Outcome.DENIED,
                object_type="session",
                detail=f"{request.method} {request.path[:200]}: session ended (deactivated, signed out everywhere "
                "or password changed)",
            )
            request.session.flush()
        return self.get_response(request)


# Pages a signed-in user may reach before the second factor and the password change are done.
_GATE_EXEMPT = {
    "accounts:logout",
    "accounts:otp_setup",
    "accounts:otp_verify",
    "set_language",
    "healthz",
}


class AccountGateMiddleware:
    """Specialists and admins confirm a second factor; accounts with a temporary password change it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        user: Any = request.user  # OTPMiddleware adds is_verified()
        match = request.resolver_match
        if not user.is_authenticated or match is None or match.view_name in _GATE_EXEMPT:
            return None
        if match.route.startswith(("api/", "dicom-web/", "fhir/")):
            return None  # the APIs answer for themselves, in JSON (hospitals.api_rules.SignedInWithSecondFactor)
        if not user.is_verified() and request_scope(request).needs_second_factor:
            has_device = user.totpdevice_set.filter(confirmed=True).exists()
            target = "accounts:otp_verify" if has_device else "accounts:otp_setup"
            return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        if getattr(user, "must_change_password", False) and match.view_name != "accounts:password_change":
            return redirect("accounts:password_change")
        return None


class HospitalTimezoneMiddleware:
    """Show dates in the time zone of the user's hospital (Moscow, Yekaterinburg, a train's current zone)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        staff = request_membership(request)
        if staff is not None:
            timezone.activate(zoneinfo.ZoneInfo(staff.hospital.time_zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
