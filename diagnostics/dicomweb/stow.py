"""STOW-RS: store the parts of a request, each on its own, and the Store Instances Response (PS3.18 Annex I).

Every part is stored in its own transaction (a savepoint inside a caller's transaction), so one bad part
costs only itself. Each failed part is answered with a Failure Reason code and, since a person reads the
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

from diagnostics.dicom import DicomInvalid, header_read
from diagnostics.dicomweb import dicomjson
from diagnostics.dicomweb.multipart import Part, part_content
from diagnostics.dicomweb.selectors import is_uid
from diagnostics.models import Instance
from diagnostics.services import Filed, ImagingRefused, InstanceConflict, Stored, instance_store
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
    # One transaction for the request (each part in its own savepoint, so a bad one costs only itself):
    # one commit, and the parts' audit rows chained in one append instead of one lock each.
    filed = Filed()
    with transaction.atomic(), audit_batch():
        results = [_part_store(request, body, part, hospital_id, user, study_uid, filed) for part in parts]
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


def _part_store(
    request: HttpRequest,
    body: BinaryIO,
    part: Part,
    hospital_id: int,
    user: Any,
    study_uid: str | None,
    filed: Filed,
) -> PartResult:
    result = PartResult(part)
    if part.content_type not in ("", "application/dicom"):
        return _fail(
            request,
            result,
            CANNOT_UNDERSTAND,
            _("Part %(number)s is “%(type)s”; only application/dicom parts are stored.")
            % {"number": part.number, "type": part.content_type},
        )
    data = part_content(body, part)
    try:
        header = header_read(data)
    except DicomInvalid as exc:
        result.sop_class_uid, result.sop_instance_uid, _study = _identity(data)  # to name the part, if it can be
        return _fail(request, result, CANNOT_UNDERSTAND, _part_says(part, exc))
    result.sop_class_uid, result.sop_instance_uid, part_study = header.sop_class_uid, header.sop_uid, header.study_uid
    if study_uid and part_study != study_uid:
        return _fail(
            request,
            result,
            STUDY_MISMATCH,
            _("Part %(number)s belongs to study %(found)s, not to %(target)s where it was sent.")
            % {"number": part.number, "found": part_study, "target": study_uid},
        )
    try:
        with transaction.atomic():
            result.stored = instance_store(
                data=data,
                hospital_id=hospital_id,
                source=Instance.Source.STOW,
                by=user,
                header=header,
                filed=filed,
            )
            part_audit(request, result)
    except DicomInvalid as exc:
        return _fail(request, result, CANNOT_UNDERSTAND, _part_says(part, exc))
    except InstanceConflict as exc:
        return _fail(request, result, DUPLICATE_SOP_INSTANCE, _part_says(part, exc))
    except ImagingRefused as exc:
        return _fail(request, result, PROCESSING_FAILURE, _part_says(part, exc))
    return result


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


def _fail(request: HttpRequest, result: PartResult, failure: int, reason: str) -> PartResult:
    result.failure, result.reason = failure, reason
    part_audit(request, result)
    return result


def part_audit(request: HttpRequest, result: PartResult) -> None:
    """The audit entry of one part: the instance stored (inside its transaction), or the refusal and its
    reason. The one place to batch them, should a benchmark ask."""
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
