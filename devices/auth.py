"""How a device proves itself to the API: `Authorization: Device mhd_<prefix>_<secret>`.

A device is not a person. Its requests carry `request.user` = a `DevicePrincipal` (an anonymous user to
everything that checks for staff, so no page or staff endpoint ever lets it in) and `request.auth` = the
`Device`. Only endpoints that name `DeviceTokenAuthentication` accept a device token; the project's default
authentication classes do not, so a device can never read. An endpoint for devices subclasses
`DeviceAPIView` (or uses `DeviceTokenAuthentication` with `IsDevice`) and files what it receives under
`device_of(request).hospital_id`: a device writes for its own hospital and no other.
"""

from datetime import UTC
from typing import TYPE_CHECKING, Any, NoReturn

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework.views import APIView

from devices import selectors, services
from devices.models import TOKEN_SCHEME, Device, DeviceToken

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema

KEYWORD = "Device"


class DevicePrincipal(AnonymousUser):
    """`request.user` of a device's request: signed in as nobody, staff of no hospital, verified by no
    second factor. The device itself is `request.auth` (or `device_of(request)`)."""

    def __init__(self, device: Device) -> None:
        super().__init__()
        self.device = device

    def __str__(self) -> str:
        return f"device {self.device.pk}"

    def is_verified(self) -> bool:  # django-otp's question to a user: never yes for a device
        return False


class DeviceTokenRefused(exceptions.AuthenticationFailed):
    """401 with a stable code and a sentence the device's installer can act on."""


class DeviceTokenAuthentication(BaseAuthentication):
    """Resolve `Authorization: Device <token>` to an active token of an active device of an active hospital.
    Any other Authorization scheme is left to other authenticators; a device token that does not hold is a
    401 naming the reason, and an audit row."""

    def authenticate(self, request: Request) -> tuple[DevicePrincipal, Device] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        raw = parts[1].decode("ascii", errors="replace") if len(parts) == 2 else ""
        prefix = selectors.device_token_prefix(raw)
        if not prefix:
            self._refuse(
                request,
                None,
                "device_token_malformed",
                _(
                    "The Authorization header must be “Device” followed by the device's whole token, which "
                    "starts with “%(scheme)s_”. Copy it again, or ask the hospital admin for a new one."
                )
                % {"scheme": TOKEN_SCHEME},
                "not a device token",
            )
        token = selectors.device_token_find(token=raw)
        name = f"token {TOKEN_SCHEME}_{prefix}_…"
        if token is None:
            self._refuse(
                request,
                None,
                "device_token_unknown",
                _(
                    "This device token is not known to the platform. Check that it was copied in full, or ask "
                    "the hospital admin for a new one."
                ),
                f"{name} unknown",
            )
        device = token.device
        if token.revoked_at is not None:
            revoked = token.revoked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            self._refuse(
                request,
                token,
                "device_token_revoked",
                _(
                    "This device token was revoked on %(date)s and no longer works. Ask the hospital admin for "
                    "a new token and set it on the device."
                )
                % {"date": revoked},
                f"{name} of device {device.pk} was revoked at {revoked}",
            )
        if not device.active:
            self._refuse(
                request,
                token,
                "device_inactive",
                _(
                    "This device is deactivated on the platform, so it may not send anything. Ask the hospital "
                    "admin to activate it again."
                ),
                f"{name}: device {device.pk} is deactivated",
            )
        if not device.hospital.is_active:
            self._refuse(
                request,
                token,
                "hospital_inactive",
                _("The device's hospital is not active on the platform, so its devices may not send anything."),
                f"{name}: hospital {device.hospital_id} of device {device.pk} is not active",
            )
        services.device_token_used(token=token)
        return DevicePrincipal(device), device

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer a refused or missing credential with 401 rather than 403.
        return f'{KEYWORD} realm="api"'

    @staticmethod
    def _refuse(request: Request, token: DeviceToken | None, code: str, message: str, reason: str) -> NoReturn:
        services.device_token_refused(request=request._request, token=token, code=code, reason=reason)
        raise DeviceTokenRefused(message, code=code)


class IsDevice(permissions.BasePermission):
    """The request was authenticated by a device's token (never a person's session or token)."""

    message = gettext_lazy("Only a device may call this endpoint, with “Authorization: Device <token>”.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, Device)


def device_of(request: Request) -> Device:
    """The device that sent the request. What it sends belongs to `device.hospital_id`, and only there: an
    endpoint for devices takes no hospital from the request."""
    device = request.auth
    if not isinstance(device, Device):
        raise exceptions.NotAuthenticated(IsDevice.message, code="device_token_missing")
    return device


class DeviceAPIView(APIView):
    """Base of an endpoint that devices call: a device token is the only credential it takes. A request
    without one is a 401 that says what to send, and an audit row."""

    authentication_classes = [DeviceTokenAuthentication]
    permission_classes = [IsDevice]

    def permission_denied(self, request: Request, message: Any = None, code: Any = None) -> None:
        if request.successful_authenticator is None:
            services.device_token_refused(
                request=request._request,
                token=None,
                code="device_token_missing",
                reason="no Authorization: Device header",
            )
            raise exceptions.NotAuthenticated(
                _(
                    "Send the device's token in the header “Authorization: Device <token>”. The hospital admin "
                    "issues it on the device's page."
                ),
                code="device_token_missing",
            )
        super().permission_denied(request, message=message, code=code)


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    """The device token in the OpenAPI schema."""

    target_class = DeviceTokenAuthentication
    name = "deviceToken"

    def get_security_definition(self, auto_schema: "AutoSchema") -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Device mhd_<prefix>_<secret>`: the token the hospital admin issued for the device.",
        }
