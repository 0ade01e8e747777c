"""Reads about devices: the DICOM allow-list, the device registry as admins see it, and token lookup."""

import hmac
import re

from django.db.models import Count, Max, Q, QuerySet

from devices.models import TOKEN_SCHEME, Device, DeviceToken, token_digest
from diagnostics.models import LabMessage
from hospitals.scoping import Scope, access_record, hospital_assets_manageable

# mhd_<12 hex digits: the public prefix>_<secrets.token_urlsafe(32): 43 characters>
TOKEN_PATTERN = re.compile(rf"^{TOKEN_SCHEME}_(?P<prefix>[0-9a-f]{{12}})_(?P<secret>[A-Za-z0-9_-]{{43}})$")


def device_for_ae_title(*, ae_title: str) -> Device | None:
    """The active device of an active hospital that calls itself `ae_title`: the DICOM allow-list."""
    if not ae_title:
        return None
    return (
        Device.objects.filter(ae_title=ae_title, active=True, hospital__is_active=True)
        .select_related("hospital")
        .first()
    )


def device_for_hl7_sender(*, application: str, facility: str) -> Device | None:
    """The device an MLLP message comes from, by its MSH-3 and MSH-4: the device registered as
    "application^facility", else as "application" alone. Inactive devices and hospitals are nobody."""
    if not application:
        return None
    names = [f"{application}^{facility}", application] if facility else [application]
    found = {
        device.hl7_sender: device
        for device in Device.objects.filter(hl7_sender__in=names, active=True, hospital__is_active=True).select_related(
            "hospital"
        )
    }
    return next((found[name] for name in names if name in found), None)


def devices_manageable(scope: Scope) -> QuerySet[Device]:
    """Hospital admins manage their own hospital's devices; platform admins every hospital's."""
    return hospital_assets_manageable(scope, Device.objects.select_related("hospital"))


def access_device(scope: Scope, pk: object) -> Device:
    """One device the scope manages; any other (another hospital's, or none) is a 404."""
    return access_record(devices_manageable(scope), pk)


def device_list(*, scope: Scope, query: str = "") -> QuerySet[Device]:
    """The registry page: the scope's devices, searched by name, vendor, model, serial, location or AE title,
    each with its number of active tokens and when one was last used (one query for the lot)."""
    devices = devices_manageable(scope)
    if query:
        devices = devices.filter(
            Q(name__icontains=query)
            | Q(vendor__icontains=query)
            | Q(model_name__icontains=query)
            | Q(serial__icontains=query)
            | Q(location__icontains=query)
            | Q(ae_title__icontains=query)
            | Q(hl7_sender__icontains=query)
        )
    annotated = devices.annotate(
        active_tokens=Count("tokens", filter=Q(tokens__revoked_at__isnull=True)),
        token_last_used_at=Max("tokens__last_used_at", filter=Q(tokens__revoked_at__isnull=True)),
    )
    return annotated.order_by("hospital__name", "name", "pk")  # Meta.ordering does not apply to a GROUP BY


def device_tokens(*, device: Device) -> QuerySet[DeviceToken]:
    """A device's tokens, active and revoked, newest first, with who issued them."""
    return device.tokens.select_related("created_by")


def device_messages(*, device: Device, limit: int = 20) -> list[LabMessage]:
    """The device's latest lab messages with what became of each (status, count, errors), for the people
    who manage it: no patient data, only whether the analyser's messages are getting through."""
    return list(
        LabMessage.objects.filter(hospital_id=device.hospital_id, device_id=device.pk)
        .only("source", "control_id", "status", "errors", "stored", "received_at", "processed_at")
        .order_by("-received_at", "-pk")[:limit]
    )


def access_device_token(*, device: Device, pk: object) -> DeviceToken:
    """One token of the device; another device's token is a 404 like an absent one."""
    return access_record(DeviceToken.objects.filter(device=device), pk)


def device_token_prefix(token: str) -> str:
    """The public prefix of a well-formed token ("" otherwise): safe to log and audit, unlike the token."""
    match = TOKEN_PATTERN.match(token)
    return match["prefix"] if match else ""


def device_token_find(*, token: str) -> DeviceToken | None:
    """The token row whose hash matches `token`, revoked or not, with its device and hospital; None for a
    token the platform never issued. Compared in constant time."""
    prefix = device_token_prefix(token)
    if not prefix:
        return None
    row = DeviceToken.objects.select_related("device__hospital").filter(prefix=prefix).first()
    if row is None or not hmac.compare_digest(row.digest, token_digest(token)):
        return None
    return row
