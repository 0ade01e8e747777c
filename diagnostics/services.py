"""Writes of imaging data: store an instance (any way in), and the pipeline that makes it viewable."""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from diagnostics import dicom, events
from diagnostics.models import Instance, Series, Study
from hospitals.errors import Refused
from patients.models import Patient

log = logging.getLogger(__name__)


class ImagingRefused(Refused):
    """An image the platform will not file: the message names the reason and what to do."""

    code = "imaging_refused"


class InstanceConflict(ImagingRefused):
    """The same SOP Instance UID already arrived with other bytes; the stored one is kept."""

    code = "instance_conflict"


@dataclass(frozen=True)
class Stored:
    instance: Instance
    created: bool  # False: these very bytes had arrived before, and nothing was added


@dataclass
class Filed:
    """What earlier stores of one batch (a STOW request) looked up: patients by record number, series by
    study and series UID. Filled only once a store has succeeded, so nothing rolled back is remembered."""

    patients: dict[str, Patient] = field(default_factory=dict)
    series: dict[tuple[str, str], Series] = field(default_factory=dict)


def instance_store(
    *,
    data: bytes,
    hospital_id: int,
    source: str,
    patient: Patient | None = None,
    by: Any = None,
    header: dicom.Header | None = None,
    filed: Filed | None = None,
) -> Stored:
    """Check, store and index one DICOM file, and queue its processing once the transaction commits.

    `patient`, when given, is the clinician's choice (already checked to be theirs); otherwise the header's
    PatientID must be a record number of the hospital. `header` is dicom.header_read(data) when the caller
    has read it already; `filed` spares a batch the lookups of its earlier files. Raises dicom.DicomInvalid
    or ImagingRefused; a failure leaves nothing behind, so one bad file in a batch costs only itself."""
    header = header or dicom.header_read(data)
    filed = filed if filed is not None else Filed()
    digest = hashlib.sha256(data).hexdigest()
    existing = Instance.objects.filter(hospital_id=hospital_id, sop_instance_uid=header.sop_uid).first()
    if existing is not None:
        return _same_or_conflict(existing, digest, data)
    record = header.text("PatientID").upper() if patient is None else None  # None: the clinician chose
    if patient is None:
        patient = filed.patients.get(record or "") or _patient_of(header, hospital_id)
    name = f"dicom/{digest[:2]}/{digest[2:4]}/{digest}.dcm"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    try:
        with transaction.atomic():
            series = filed.series.get((header.study_uid, header.series_uid))
            if series is None or series.study.patient_id != patient.pk:
                series = _series_of(header, hospital_id, patient)
            instance = Instance.objects.create(
                series=series,
                hospital_id=hospital_id,
                sop_instance_uid=header.sop_uid,
                sop_class_uid=header.sop_class_uid,
                number=dicom.int_or_none(header.dataset.get("InstanceNumber")),
                rows=header.rows,
                columns=header.columns,
                frames=header.frames,
                transfer_syntax_uid=header.transfer_syntax_uid,
                photometric=header.text("PhotometricInterpretation", 16),
                pixel_spacing=dicom.pixel_spacing(header.dataset),
                sha256=digest,
                file=name,
                size=len(data),
                source=source,
                uploaded_by=by if getattr(by, "pk", None) else None,
            )
            transaction.on_commit(lambda: _queue(instance.pk))
        if record is not None:
            filed.patients[record] = patient
        filed.series[(header.study_uid, header.series_uid)] = series
    except IntegrityError:  # the same instance arrived at the same moment by another way in
        existing = Instance.objects.filter(hospital_id=hospital_id, sop_instance_uid=header.sop_uid).first()
        if existing is None:
            raise
        return _same_or_conflict(existing, digest, data)
    return Stored(instance, created=True)


def _same_or_conflict(existing: Instance, digest: str, data: bytes) -> Stored:
    if existing.sha256 == digest:
        return Stored(existing, created=False)
    with default_storage.open(existing.file.name, "rb") as stored:
        kept = stored.read()
    if dicom.dataset_bytes(kept) == dicom.dataset_bytes(data):
        # The same image with another file meta header (another sender's name for itself): not news.
        return Stored(existing, created=False)
    raise InstanceConflict(
        _(
            "An image with SOP Instance UID %(uid)s is already stored with different content; the stored one "
            "is kept. If this is a corrected image, the modality must give it a new UID."
        )
        % {"uid": existing.sop_instance_uid}
    )


def _patient_of(header: dicom.Header, hospital_id: int) -> Patient:
    record = header.text("PatientID")
    patient = Patient.objects.filter(hospital_id=hospital_id, record_number__iexact=record).first() if record else None
    if patient is None:
        raise ImagingRefused(
            _(
                "No patient with record number “%(record)s” (the images' Patient ID) in your hospital: register "
                "the patient, or upload from the patient's page so the images go to that patient."
            )
            % {"record": record or "—"}
        )
    return patient


def _series_of(header: dicom.Header, hospital_id: int, patient: Patient) -> Series:
    ds = header.dataset
    study, _new_study = Study.objects.get_or_create(
        hospital_id=hospital_id,
        study_instance_uid=header.study_uid,
        defaults={
            "patient": patient,
            "study_date": _date(ds.get("StudyDate")),
            "study_time": header.text("StudyTime", 16),
            "accession_number": header.text("AccessionNumber", 16),
            "study_id": header.text("StudyID", 16),
            "description": header.text("StudyDescription"),
            "referring_physician": header.text("ReferringPhysicianName"),
            "dicom_patient_name": header.text("PatientName"),
            "dicom_patient_id": header.text("PatientID"),
            "dicom_birth_date": header.text("PatientBirthDate", 8),
            "dicom_sex": header.text("PatientSex", 16),
        },
    )
    if study.patient_id != patient.pk:
        raise ImagingRefused(
            _(
                "This study (%(uid)s) is already filed under another patient, record %(record)s; images of one "
                "study cannot go to two patients."
            )
            % {"uid": header.study_uid, "record": study.patient.record_number}
        )
    modality = header.text("Modality", 16)
    if modality and modality not in study.modalities.split(","):
        study.modalities = ",".join(filter(None, [*study.modalities.split(","), modality]))[:64]
        study.save(update_fields=["modalities", "updated_at"])
    series, _created = Series.objects.get_or_create(
        study=study,
        series_instance_uid=header.series_uid,
        defaults={
            "modality": modality,
            "body_part": header.text("BodyPartExamined"),
            "description": header.text("SeriesDescription"),
            "number": dicom.int_or_none(ds.get("SeriesNumber")),
        },
    )
    series.study, study.patient = study, patient  # callers read them: no query to fetch them again
    return series


def _date(value: Any) -> date | None:
    try:
        return datetime.strptime(str(value or "")[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _queue(instance_id: int) -> None:
    from diagnostics.tasks import instance_process

    instance_process.delay(instance_id)


# The pipeline (run by the Celery task).

Reader = Callable[[Instance, Any], None]


def instance_process(instance_id: int) -> bool:
    """Render an instance's frames and thumbnail, run the configured readers, mark it ready.

    Safe to run twice and after a worker died half-way: renderings are overwritten by name, and only the
    run that moves the row from processing to ready announces it. Returns whether this run did."""
    claimed = Instance.objects.filter(pk=instance_id, status__in=[Instance.Status.QUEUED, Instance.Status.PROCESSING])
    if not claimed.update(
        status=Instance.Status.PROCESSING, attempts=F("attempts") + 1, status_changed_at=timezone.now()
    ):
        return False  # ready or failed already, or gone
    instance = Instance.objects.select_related("series__study").get(pk=instance_id)
    with default_storage.open(instance.file.name, "rb") as stored:
        data = stored.read()
    try:
        header = dicom.header_read(data)
        rendered = _previews_write(instance, header) if "PixelData" in header.dataset else 0
    except (dicom.DicomInvalid, RuntimeError, ValueError, NotImplementedError, MemoryError) as exc:
        instance_fail(instance_id, _("The image cannot be decoded: %(reason)s") % {"reason": str(exc)[:300]})
        return False
    for reader in _readers():
        try:
            reader(instance, header.dataset)
        except Exception:  # a reader's fault must not hold back the image itself
            log.exception("imaging reader %r failed on instance %s", reader, instance_id)
    done = Instance.objects.filter(pk=instance_id, status=Instance.Status.PROCESSING).update(
        status=Instance.Status.READY, previews=rendered, error="", status_changed_at=timezone.now()
    )
    if done:
        study_id = instance.series.study_id
        transaction.on_commit(lambda: events.study_changed(study_id), robust=True)
    return bool(done)


def _previews_write(instance: Instance, header: dicom.Header) -> int:
    count = 0
    for count, jpeg in enumerate(dicom.frames_render(header.dataset), start=1):
        _overwrite(instance.preview_name(count), jpeg)
        if count == 1:
            _overwrite(instance.thumbnail_name, dicom.thumbnail(jpeg))
    return count


def _overwrite(name: str, content: bytes) -> None:
    if default_storage.exists(name):
        default_storage.delete(name)
    default_storage.save(name, ContentFile(content))


def _readers() -> list[Reader]:
    return [import_string(path) for path in settings.IMAGING_READERS]


def instance_fail(instance_id: int, reason: str) -> None:
    changed = (
        Instance.objects.filter(pk=instance_id)
        .exclude(status=Instance.Status.READY)
        .update(status=Instance.Status.FAILED, error=reason[:500], status_changed_at=timezone.now())
    )
    study_id = Instance.objects.filter(pk=instance_id).values_list("series__study_id", flat=True).first()
    if changed and study_id is not None:
        transaction.on_commit(lambda: events.study_changed(study_id), robust=True)


def instance_reprocess(instance: Instance) -> bool:
    """Queue a failed instance again (the user's "try again"); False when it is not failed."""
    with transaction.atomic():
        queued = Instance.objects.filter(pk=instance.pk, status=Instance.Status.FAILED).update(
            status=Instance.Status.QUEUED, error="", status_changed_at=timezone.now()
        )
        if queued:
            transaction.on_commit(lambda: _queue(instance.pk))
    return bool(queued)


def instances_requeue_stuck() -> int:
    """Periodic: queue again what has sat queued or processing too long (a lost message, a dead worker)."""
    since = timezone.now() - timedelta(minutes=settings.IMAGING_STUCK_MINUTES)
    stuck = list(
        Instance.objects.filter(
            status__in=[Instance.Status.QUEUED, Instance.Status.PROCESSING], status_changed_at__lt=since
        ).values_list("pk", flat=True)[:1000]
    )
    Instance.objects.filter(pk__in=stuck).update(status_changed_at=timezone.now())
    for pk in stuck:
        _queue(pk)
    return len(stuck)
