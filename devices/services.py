"""Writes for devices: the registry hospital admins keep, device tokens, and what a modality's DICOM
association and C-STORE requests do to the platform.

Every change to a device or a token is one audit row, written in the same transaction as the change.
The listener (`devices/dicom_listener.py`) speaks the protocol; the DICOM functions below decide, store and
audit, and say which status to send back. Every refused association and every stored or refused image is one
audit row naming the calling AE title, the device and the peer's address.
"""

import io
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

import pydicom
from django.db import DatabaseError, transaction
from django.http import HttpRequest
from django.utils import timezone

from devices.models import TOKEN_SCHEME, Device, DeviceToken, token_digest
from devices.selectors import device_for_ae_title
from diagnostics.dicom import DicomInvalid
from diagnostics.models import Instance
from diagnostics.services import ImagingRefused, InstanceConflict, instance_store
from hospitals.audit import Action, Outcome, audit_record
from hospitals.models import Hospital, User
from patients.models import Patient

log = logging.getLogger(__name__)

# The registry.

DEVICE_FIELDS = ("name", "kind", "vendor", "model_name", "serial", "location", "ae_title", "hl7_sender")


@transaction.atomic
def device_create(
    *,
    hospital: Hospital,
    name: str,
    kind: str,
    vendor: str = "",
    model_name: str = "",
    serial: str = "",
    location: str = "",
    ae_title: str = "",
    hl7_sender: str = "",
    by: User,
    request: HttpRequest | None = None,
) -> Device:
    """Register a device of `hospital`, active at once. `request` (when there is one) gives the audit row
    its address; raises ValidationError for values the model refuses (a taken AE title)."""
    device = Device(
        hospital=hospital,
        name=name,
        kind=kind,
        vendor=vendor,
        model_name=model_name,
        serial=serial,
        location=location,
        ae_title=ae_title,
        hl7_sender=hl7_sender,
    )
    device.full_clean()
    device.save()
    audit_record(request=request, user=by, action=Action.CREATE, obj=device, detail=_describe(device))
    return device


@transaction.atomic
def device_update(
    *,
    device: Device,
    name: str,
    kind: str,
    vendor: str = "",
    model_name: str = "",
    serial: str = "",
    location: str = "",
    ae_title: str = "",
    hl7_sender: str = "",
    by: User,
    request: HttpRequest | None = None,
) -> Device:
    """Change a device's details; the audit row names each changed field with its old and new value."""
    new = {
        "name": name,
        "kind": kind,
        "vendor": vendor,
        "model_name": model_name,
        "serial": serial,
        "location": location,
        "ae_title": ae_title,
        "hl7_sender": hl7_sender,
    }
    changes = {
        field: (getattr(device, field), value) for field, value in new.items() if getattr(device, field) != value
    }
    if not changes:
        return device
    for field, (_old, value) in changes.items():
        setattr(device, field, value)
    device.full_clean()
    device.save(update_fields=list(changes))
    detail = "; ".join(f"{field}: {old!r} -> {value!r}" for field, (old, value) in changes.items())
    audit_record(request=request, user=by, action=Action.UPDATE, obj=device, detail=detail)
    return device


@transaction.atomic
def device_deactivate(*, device: Device, by: User, request: HttpRequest | None = None) -> Device:
    """Stop taking anything from the device: its tokens and its AE title are refused until it is activated
    again (the tokens are kept, so reactivating needs no new configuration on the device)."""
    return _device_active_set(device, active=False, by=by, request=request)


@transaction.atomic
def device_activate(*, device: Device, by: User, request: HttpRequest | None = None) -> Device:
    return _device_active_set(device, active=True, by=by, request=request)


def _device_active_set(device: Device, *, active: bool, by: User, request: HttpRequest | None) -> Device:
    if device.active == active:
        return device
    device.active = active
    device.save(update_fields=["active"])
    detail = "activated" if active else "deactivated"
    audit_record(request=request, user=by, action=Action.UPDATE, obj=device, detail=detail)
    return device


def _describe(device: Device) -> str:
    return "; ".join(f"{field}: {getattr(device, field)!r}" for field in DEVICE_FIELDS if getattr(device, field))


# Device tokens.

# How stale last_used_at / last_seen_at may get: a device that sends every second costs a write a minute.
TOKEN_USE_RECORD_INTERVAL = timedelta(minutes=1)


@transaction.atomic
def device_token_issue(*, device: Device, by: User, request: HttpRequest | None = None) -> tuple[DeviceToken, str]:
    """A new token for the device, next to any it has; returns the row and the token itself, which exists
    nowhere else: show it once, never store or log it."""
    prefix = secrets.token_hex(6)
    plain = f"{TOKEN_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    token = DeviceToken.objects.create(device=device, prefix=prefix, digest=token_digest(plain), created_by=by)
    audit_record(
        request=request, user=by, action=Action.CREATE, obj=token, detail=f"token {token} issued for device {device.pk}"
    )
    return token, plain


@transaction.atomic
def device_token_rotate(*, device: Device, by: User, request: HttpRequest | None = None) -> tuple[DeviceToken, str]:
    """Replace the device's tokens: every active one is revoked and a new one issued, together or not at all.
    Returns the new row and token (shown once)."""
    Device.objects.select_for_update().filter(pk=device.pk).first()  # one rotation of a device at a time
    for old in device.tokens.filter(revoked_at__isnull=True):
        _token_revoke(old, by=by, request=request, detail=f"token {old} revoked by rotation")
    return device_token_issue(device=device, by=by, request=request)


@transaction.atomic
def device_token_revoke(*, token: DeviceToken, by: User, request: HttpRequest | None = None) -> DeviceToken:
    """Revoke a token for good: the device's next request with it is refused. Revoking twice changes nothing."""
    if token.revoked_at is None:
        _token_revoke(token, by=by, request=request, detail=f"token {token} revoked")
    return token


def _token_revoke(token: DeviceToken, *, by: User, request: HttpRequest | None, detail: str) -> None:
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        request=request, user=by, action=Action.UPDATE, obj=token, detail=f"{detail} (device {token.device_id})"
    )


def device_token_used(*, token: DeviceToken) -> None:
    """Note that the device called in with the token: when, on the token and the device, at most once a
    minute (two cheap updates, no audit row: a device's results are audited where they are stored)."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < TOKEN_USE_RECORD_INTERVAL:
        return
    token.last_used_at = now
    DeviceToken.objects.filter(pk=token.pk).update(last_used_at=now)
    Device.objects.filter(pk=token.device_id).update(last_seen_at=now)
    token.device.last_seen_at = now


def device_token_refused(*, request: HttpRequest, token: DeviceToken | None, code: str, reason: str) -> None:
    """Audit a request refused for its device token (and log it). `reason` may name the token by its prefix,
    never by the secret part: that must reach neither the trail nor a log."""
    log.warning("Device request %s %s refused (%s): %s", request.method, request.path[:200], code, reason)
    audit_record(
        request=request,
        action=Action.LOGIN_FAILURE,
        outcome=Outcome.DENIED,
        obj=token.device if token is not None else None,
        object_type="devices.device",
        detail=f"{request.method} {request.path[:200]}: device token refused ({code}): {reason}",
    )


# DICOM.

# A-ASSOCIATE-RJ diagnostics (PS3.8 9.3.4), sent with result "rejected permanent", source "service user".
CALLING_AE_NOT_RECOGNISED = 0x03
CALLED_AE_NOT_RECOGNISED = 0x07

# C-STORE response statuses (PS3.4 B.2.3, PS3.7 C). A modality acts on the range; the code within it and
# the Error Comment tell its operator the reason.
SUCCESS = 0x0000
NOT_AUTHORISED = 0x0124  # the device was deactivated while its association was open
OUT_OF_RESOURCES = 0xA700  # storage or database trouble here: send again later
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000  # not a DICOM data set the platform can read
REFUSED_NO_PATIENT = 0xC100  # no patient with the images' Patient ID, or the study is another patient's
REFUSED_CONFLICT = 0xC101  # the SOP Instance UID is stored already, with other content
INTERNAL_ERROR = 0xC1FF

ERROR_COMMENT_LENGTH = 64  # Error Comment is a LO element, in the command set's ASCII


@dataclass(frozen=True)
class AssociationDecision:
    device: Device | None  # None: refused
    diagnostic: int = 0  # why, as an A-ASSOCIATE-RJ diagnostic


@dataclass(frozen=True)
class Receipt:
    """The answer to one C-STORE request."""

    status: int
    comment: str = ""  # Error Comment for the modality's operator: ASCII, at most 64 characters


def dicom_association_decide(
    *, calling_ae_title: str, called_ae_title: str, listener_ae_title: str, peer: str
) -> AssociationDecision:
    """Accept an association only from an active device of an active hospital, addressed to this listener."""
    if called_ae_title != listener_ae_title:
        _association_refused(
            calling_ae_title,
            peer,
            f"called AE title {called_ae_title!r} is not this listener's ({listener_ae_title!r})",
        )
        return AssociationDecision(None, CALLED_AE_NOT_RECOGNISED)
    device = device_for_ae_title(ae_title=calling_ae_title)
    if device is None:
        known = Device.objects.filter(ae_title=calling_ae_title).first() if calling_ae_title else None
        reason = (
            f"calling AE title {calling_ae_title!r} belongs to device {known.pk} {known.name!r}, which is inactive"
            if known is not None
            else f"calling AE title {calling_ae_title!r} is not on the allow-list"
        )
        _association_refused(calling_ae_title, peer, reason, device=known)
        return AssociationDecision(None, CALLING_AE_NOT_RECOGNISED)
    device_seen(device=device)
    return AssociationDecision(device)


def _association_refused(calling_ae_title: str, peer: str, reason: str, device: Device | None = None) -> None:
    log.warning("DICOM association from %s refused: %s", peer, reason)
    audit_record(
        request=None,
        action=Action.LOGIN_FAILURE,
        outcome=Outcome.DENIED,
        obj=device,
        object_type="devices.device",
        detail=f"DICOM association from AE {calling_ae_title!r} at {peer} refused: {reason}",
    )


def device_seen(*, device: Device) -> None:
    Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now())


@dataclass(frozen=True)
class _Identity:
    sop_class_uid: str
    sop_instance_uid: str
    patient_id: str


def dicom_instance_receive(
    *, calling_ae_title: str, data: bytes, sop_class_uid: str, sop_instance_uid: str, peer: str
) -> Receipt:
    """Store one image a device sent (a Part 10 file) under the device's hospital, audit it, and say what to
    answer: success also when these very bytes arrived before; a failure with the reason otherwise."""
    device = device_for_ae_title(ae_title=calling_ae_title)
    if device is None:  # deactivated while the association was open
        audit_record(
            request=None,
            action=Action.CREATE,
            outcome=Outcome.DENIED,
            object_type="diagnostics.instance",
            object_id=sop_instance_uid,
            detail=f"C-STORE from AE {calling_ae_title!r} at {peer} refused: no active device has this AE title",
        )
        return Receipt(NOT_AUTHORISED, "This device is not active on the platform")
    source = f"C-STORE from AE {calling_ae_title!r} (device {device.pk} {device.name!r}) at {peer}"
    identity = _identity(data)
    if identity is not None and identity.sop_class_uid and identity.sop_class_uid != sop_class_uid:
        return _refused(
            source,
            sop_instance_uid,
            Receipt(DATA_SET_DOES_NOT_MATCH_SOP_CLASS, "SOP Class UID differs from the request's"),
            f"the data set's SOP Class UID {identity.sop_class_uid} is not the request's {sop_class_uid}",
            Outcome.INVALID,
        )
    if identity is not None and identity.sop_instance_uid and identity.sop_instance_uid != sop_instance_uid:
        return _refused(
            source,
            sop_instance_uid,
            Receipt(CANNOT_UNDERSTAND, "SOP Instance UID differs from the request's"),
            f"the data set's SOP Instance UID {identity.sop_instance_uid} is not the request's",
            Outcome.INVALID,
        )
    try:
        stored = instance_store(data=data, hospital_id=device.hospital_id, source=Instance.Source.C_STORE)
    except DicomInvalid as exc:
        return _refused(source, sop_instance_uid, Receipt(CANNOT_UNDERSTAND, _ascii(str(exc))), str(exc))
    except InstanceConflict as exc:
        comment = "SOP Instance UID already stored with other content"
        return _refused(source, sop_instance_uid, Receipt(REFUSED_CONFLICT, comment), str(exc), Outcome.DENIED)
    except ImagingRefused as exc:
        record = identity.patient_id if identity is not None else ""
        if not record:
            comment = "No Patient ID (record number) in the data set"
        elif Patient.objects.filter(hospital_id=device.hospital_id, record_number__iexact=record).exists():
            comment = "The study is filed under another patient"
        else:
            comment = f"No patient with record number {record}"
        return _refused(
            source, sop_instance_uid, Receipt(REFUSED_NO_PATIENT, _ascii(comment)), str(exc), Outcome.DENIED
        )
    except (OSError, DatabaseError, MemoryError):
        log.exception("%s: %s could not be stored", source, sop_instance_uid)
        return Receipt(OUT_OF_RESOURCES, "Storage unavailable: send the image again later")
    instance = stored.instance
    audit_record(
        request=None,
        action=Action.CREATE,
        obj=instance,
        patient_id=instance.series.study.patient_id,
        detail=source if stored.created else f"{source}: these bytes were stored before, nothing added",
    )
    device_seen(device=device)
    log.info("%s: %s %s", source, sop_instance_uid, "stored" if stored.created else "already stored")
    return Receipt(SUCCESS)


def _identity(data: bytes) -> _Identity | None:
    """The UIDs and Patient ID, read without the pixels; None when unreadable (instance_store says why)."""
    try:
        dataset = pydicom.dcmread(
            io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPClassUID", "SOPInstanceUID", "PatientID"]
        )
        return _Identity(
            str(dataset.get("SOPClassUID", "") or "").strip(),
            str(dataset.get("SOPInstanceUID", "") or "").strip(),
            str(dataset.get("PatientID", "") or "").strip(),
        )
    except Exception:  # noqa: BLE001 - any damage is reported by instance_store with a reason for a person
        return None


def _refused(
    source: str, sop_instance_uid: str, receipt: Receipt, reason: str, outcome: str = Outcome.INVALID
) -> Receipt:
    log.warning("%s: %s refused: %s", source, sop_instance_uid, reason)
    audit_record(
        request=None,
        action=Action.CREATE,
        outcome=outcome,
        object_type="diagnostics.instance",
        object_id=sop_instance_uid,
        detail=f"{source} refused: {reason}",
    )
    return receipt


_QUOTES = str.maketrans({"“": '"', "”": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "—": "-", "–": "-", "×": "x"})


def _ascii(text: str) -> str:
    """Text fit for an Error Comment: ASCII without control characters or backslash, 64 characters at most."""
    folded = unicodedata.normalize("NFKD", text.translate(_QUOTES)).encode("ascii", "ignore").decode()
    folded = re.sub(r"[\x00-\x1f\x7f\\]+", " ", folded)
    return " ".join(folded.split())[:ERROR_COMMENT_LENGTH].rstrip()
