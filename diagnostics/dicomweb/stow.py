"""STOW-RS: store the parts of a request, each on its own, and the Store Instances Response (PS3.18 Annex I).

The parts of a request are stored together (services.instances_store), and one bad part costs only
itself. Each failed part is answered with a Failure Reason code and, since a person reads the
answer, the reason as a sentence in Error Comment (0000,0902): the attribute DICOM pairs with a failure
status in C-STORE (PS3.4 B.2.3), carried here in the Failed SOP Sequence item.
"""

import io
import warnings
from dataclasses import dataclass
from typing import Any, BinaryIO

import pydicom
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from diagnostics.dicom import DicomInvalid, Header, header_read
from diagnostics.dicomweb import dicomjson
from diagnostics.dicomweb.multipart import Part, part_content
from diagnostics.dicomweb.selectors import is_uid
from diagnostics.models import Instance
from diagnostics.services import InstanceConflict, Stored, instances_store
from hospitals.audit import Action, Outcome, audit_batch, audit_record

MAX_PARTS = 1000

# Failure Reason (0008,1197) values: PS3.18 Table I.2-2, and PS3.7's general "duplicate SOP instance" for
# the same SOP Instance UID with other bytes.
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
CANNOT_UNDERSTAND = 0xC000
# Implementation specific, in the A9xx "does not match" range (as Microsoft's DICOM server does): the
# instance belongs to another study than the request's target.
STUDY_MISMATCH = 0xA901


@dataclass
class PartResult:
    part: Part
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    stored: Stored | None = None
    failure: int = 0
    reason: str = ""


def parts_store(
    *,
    request: HttpRequest,
    body: BinaryIO,
    parts: list[Part],
    hospital_id: int,
    user: Any,
    study_uid: str | None,
    links: dicomjson.Links,
) -> tuple[int, dicomjson.Json]:
    """Store each part as an instance of the caller's hospital; the HTTP status and the response body."""
    results = [PartResult(part) for part in parts]
    readable: list[tuple[PartResult, bytes, Header]] = []
    for result in results:
        checked = _part_read(body, result, study_uid)
        if checked is not None:
            readable.append((result, *checked))
    # One transaction for the request: the new rows in one insert, one commit, and the parts' audit rows
    # chained in one append. A refused part costs only itself.
    with transaction.atomic(), audit_batch():
        outcomes = instances_store(
            files=[(data, header) for _result, data, header in readable],
            hospital_id=hospital_id,
            source=Instance.Source.STOW,
            by=user,
        )
        for (result, _data, _header), outcome in zip(readable, outcomes, strict=True):
            if isinstance(outcome, Stored):
                result.stored = outcome
            else:
                failure = DUPLICATE_SOP_INSTANCE if isinstance(outcome, InstanceConflict) else PROCESSING_FAILURE
                result.failure, result.reason = failure, _part_says(result.part, outcome)
        for result in results:
            part_audit(request, result)
    stored = [result for result in results if result.stored is not None]
    failed = [result for result in results if result.stored is None]
    status = 200 if not failed else 202 if stored else 409
    studies = {_study_uid(result) for result in stored}
    target = study_uid or (studies.pop() if len(studies) == 1 else "")
    response = dicomjson.dataset(
        [
            ("RetrieveURL", links.study(target) if target else ""),
            *([("FailedSOPSequence", [_failed_item(result) for result in failed])] if failed else []),
            *([("ReferencedSOPSequence", [_stored_item(result, links) for result in stored])] if stored else []),
        ]
    )
    return status, response


def _part_read(body: BinaryIO, result: PartResult, study_uid: str | None) -> tuple[bytes, Header] | None:
    """The part's bytes and header when it is a DICOM instance of the target study; otherwise None, with
    the failure recorded on the result."""
    part = result.part
    if part.content_type not in ("", "application/dicom"):
        result.failure, result.reason = (
            CANNOT_UNDERSTAND,
            _("Part %(number)s is “%(type)s”; only application/dicom parts are stored.")
            % {"number": part.number, "type": part.content_type},
        )
        return None
    data = part_content(body, part)
    try:
        header = header_read(data)
    except DicomInvalid as exc:
        result.sop_class_uid, result.sop_instance_uid, _study = _identity(data)  # to name the part, if it can be
        result.failure, result.reason = CANNOT_UNDERSTAND, _part_says(part, exc)
        return None
    result.sop_class_uid, result.sop_instance_uid = header.sop_class_uid, header.sop_uid
    if study_uid and header.study_uid != study_uid:
        result.failure, result.reason = (
            STUDY_MISMATCH,
            _("Part %(number)s belongs to study %(found)s, not to %(target)s where it was sent.")
            % {"number": part.number, "found": header.study_uid, "target": study_uid},
        )
        return None
    return data, header


def _part_says(part: Part, exc: Exception) -> str:
    return _("Part %(number)s: %(reason)s") % {"number": part.number, "reason": str(exc)}


def _identity(data: bytes) -> tuple[str, str, str]:
    """SOP Class, SOP Instance and Study Instance UIDs as far as a lenient read finds them, to name a
    failed part and to check the target study before the full checks of instance_store."""
    keywords = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged header warns at every element
            dataset = pydicom.dcmread(io.BytesIO(data), force=True, specific_tags=list(keywords))
            values = [str(dataset.get(keyword, "") or "") for keyword in keywords]
    except Exception:  # noqa: BLE001 - whatever a damaged part does to the reader, it only stays unnamed
        return "", "", ""
    sop_class, sop_instance, study = (value if is_uid(value) else "" for value in values)
    return sop_class, sop_instance, study


def part_audit(request: HttpRequest, result: PartResult) -> None:
    """The audit entry of one part: the instance stored, or the refusal and its reason."""
    if result.stored is None:
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            object_type="diagnostics.instance",
            object_id=result.sop_instance_uid,
            detail=f"STOW-RS: {result.reason}",
        )
        return
    instance = result.stored.instance
    audit_record(
        request=request,
        action=Action.CREATE,
        obj=instance,
        patient_id=instance.series.study.patient_id,
        detail="STOW-RS" if result.stored.created else "STOW-RS: the same bytes were already stored",
    )


def _failed_item(result: PartResult) -> dicomjson.Json:
    return dicomjson.dataset(
        [
            ("ReferencedSOPClassUID", result.sop_class_uid),
            ("ReferencedSOPInstanceUID", result.sop_instance_uid),
            ("FailureReason", result.failure),
            ("ErrorComment", result.reason),
        ]
    )


def _study_uid(result: PartResult) -> str:
    assert result.stored is not None
    return result.stored.instance.series.study.study_instance_uid


def _stored_item(result: PartResult, links: dicomjson.Links) -> dicomjson.Json:
    assert result.stored is not None
    instance = result.stored.instance
    return dicomjson.dataset(
        [
            ("ReferencedSOPClassUID", instance.sop_class_uid),
            ("ReferencedSOPInstanceUID", instance.sop_instance_uid),
            (
                "RetrieveURL",
                links.instance(_study_uid(result), instance.series.series_instance_uid, instance.sop_instance_uid),
            ),
        ]
    )
