"""Writes for devices: what a modality's DICOM association and C-STORE requests do to the platform.

The listener (`devices/dicom_listener.py`) speaks the protocol; these functions decide, store and audit,
and say which status to send back. Every refused association and every stored or refused image is one
audit row naming the calling AE title, the device and the peer's address.
"""

import io
import logging
import re
import unicodedata
from dataclasses import dataclass

import pydicom
from django.db import DatabaseError
from django.utils import timezone

from devices.models import Device
from devices.selectors import device_for_ae_title
from diagnostics.dicom import DicomInvalid
from diagnostics.models import Instance
from diagnostics.services import ImagingRefused, InstanceConflict, instance_store
from hospitals.audit import Action, Outcome, audit_record
from patients.models import Patient

log = logging.getLogger(__name__)

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
