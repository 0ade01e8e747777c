"""Writes of imaging data: store an instance (any way in), and the pipeline that makes it viewable."""

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from diagnostics import dicom, events
from diagnostics.models import Instance, Series, Study
from hospitals.errors import Refused
from patients.models import Patient

log = logging.getLogger(__name__)
T = TypeVar("T")


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


def instance_store(
    *,
    data: bytes,
    hospital_id: int,
    source: str,
    patient: Patient | None = None,
    by: Any = None,
) -> Stored:
    """Check, store and index one DICOM file, and queue its processing once the transaction commits.

    `patient`, when given, is the clinician's choice (already checked to be theirs); otherwise the header's
    PatientID must be a record number of the hospital. Raises dicom.DicomInvalid or ImagingRefused; a
    failure leaves nothing behind."""
    (outcome,) = instances_store(
        files=[(data, dicom.header_read(data))], hospital_id=hospital_id, source=source, patient=patient, by=by
    )
    if isinstance(outcome, ImagingRefused):
        raise outcome
    return outcome


def instances_store(
    *,
    files: list[tuple[bytes, dicom.Header]],
    hospital_id: int,
    source: str,
    patient: Patient | None = None,
    by: Any = None,
) -> list[Stored | ImagingRefused]:
    """Store a batch of read files (bytes and dicom.header_read of them): each one's outcome, in order,
    is what was stored or why it was refused; a refused file costs only itself.

    A batch (a STOW-RS request, a study) costs one query for what is stored already, one for the patients
    and one insert for the new rows, however many files it has."""
    outcomes: list[Stored | ImagingRefused | None] = [None] * len(files)
    digests = [hashlib.sha256(data).hexdigest() for data, _header in files]
    uids = {header.sop_uid for _data, header in files}
    existing = {
        instance.sop_instance_uid: instance
        for instance in Instance.objects.filter(hospital_id=hospital_id, sop_instance_uid__in=uids).order_by()
    }
    patients = _patients_of([header for _data, header in files], hospital_id) if patient is None else {}
    series_of: dict[tuple[str, str, int], Series | ImagingRefused] = {}
    fresh: dict[str, int] = {}  # SOP Instance UID -> index of the first file of the batch that has it
    again: list[int] = []  # a second file with a UID met earlier in this batch
    rows: list[tuple[int, Instance]] = []
    for n, (data, header) in enumerate(files):
        if header.sop_uid in existing:
            outcomes[n] = _outcome(_same_or_conflict, existing[header.sop_uid], digests[n], data)
            continue
        if header.sop_uid in fresh:
            again.append(n)
            continue
        owner = patient or patients.get(header.text("PatientID").upper())
        if owner is None:
            outcomes[n] = _no_patient(header)
            continue
        key = (header.study_uid, header.series_uid, owner.pk)
        if key not in series_of:
            series_of[key] = _outcome(_series_of, header, hospital_id, owner)
        series = series_of[key]
        if isinstance(series, ImagingRefused):
            outcomes[n] = series
            continue
        fresh[header.sop_uid] = n
        rows.append((n, _instance_row(data, header, digests[n], series, hospital_id, source, by)))
    for n, stored in _rows_insert(rows, hospital_id, files, digests):
        outcomes[n] = stored
    for n in again:  # now that the first is stored, a repeat is either the same bytes or a conflict
        data, header = files[n]
        first = outcomes[fresh[header.sop_uid]]
        outcomes[n] = (
            _outcome(_same_or_conflict, first.instance, digests[n], data) if isinstance(first, Stored) else first
        )
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def _outcome(make: Callable[..., T], *args: Any) -> T | ImagingRefused:
    """make(*args), or the refusal it raised."""
    try:
        return make(*args)
    except ImagingRefused as exc:
        return exc


def _instance_row(
    data: bytes, header: dicom.Header, digest: str, series: Series, hospital_id: int, source: str, by: Any
) -> Instance:
    name = f"dicom/{digest[:2]}/{digest[2:4]}/{digest}.dcm"
    storage_keep_once(name, data)
    return Instance(
        series=series,
        hospital_id=hospital_id,
        sop_instance_uid=header.sop_uid,
        sop_class_uid=header.sop_class_uid,
        number=dicom.int_or_none(header.value("InstanceNumber")),
        rows=header.rows,
        columns=header.columns,
        frames=header.frames,
        transfer_syntax_uid=header.transfer_syntax_uid,
        photometric=header.text("PhotometricInterpretation", 16),
        pixel_spacing=header.pixel_spacing(),
        sha256=digest,
        file=name,
        size=len(data),
        source=source,
        uploaded_by=by if getattr(by, "pk", None) else None,
    )


def _rows_insert(
    rows: list[tuple[int, Instance]], hospital_id: int, files: list[tuple[bytes, dicom.Header]], digests: list[str]
) -> list[tuple[int, Stored | ImagingRefused]]:
    """Insert the new rows in one statement and queue them after the commit. Should another way in have
    stored one of them meanwhile (the same image by C-STORE and STOW at once), insert one by one instead,
    so that one is answered as already stored or as a conflict."""
    if not rows:
        return []
    try:
        with transaction.atomic():
            Instance.objects.bulk_create([instance for _n, instance in rows])
        done: list[tuple[int, Stored | ImagingRefused]] = [(n, Stored(instance, created=True)) for n, instance in rows]
    except IntegrityError:
        done = []
        for n, instance in rows:
            try:
                with transaction.atomic():
                    instance.save(force_insert=True)
                done.append((n, Stored(instance, created=True)))
            except IntegrityError:
                instance.pk = None
                other = Instance.objects.get(hospital_id=hospital_id, sop_instance_uid=instance.sop_instance_uid)
                done.append((n, _outcome(_same_or_conflict, other, digests[n], files[n][0])))
    queued = [stored.instance.pk for _n, stored in done if isinstance(stored, Stored) and stored.created]
    transaction.on_commit(lambda: _queue_all(queued), robust=True)
    return done


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


def _patients_of(headers: list[dicom.Header], hospital_id: int) -> dict[str, Patient]:
    """The hospital's patients by the (upper-cased) record numbers in the headers' Patient ID."""
    records = {header.text("PatientID").upper() for header in headers} - {""}
    found = Patient.objects.annotate(record=Upper("record_number")).filter(hospital_id=hospital_id, record__in=records)
    return {patient.record: patient for patient in found}


def _no_patient(header: dicom.Header) -> ImagingRefused:
    return ImagingRefused(
        _(
            "No patient with record number “%(record)s” (the images' Patient ID) in your hospital: register "
            "the patient, or upload from the patient's page so the images go to that patient."
        )
        % {"record": header.text("PatientID") or "—"}
    )


def _series_of(header: dicom.Header, hospital_id: int, patient: Patient) -> Series:
    """The series the image belongs to, its study and the series made when they are new. A new study gets
    its series without asking whether it exists (nothing can refer to a study before its commit): the
    statements a STOW request of a new study spends here fell from eleven to five."""
    modality = header.text("Modality", 16)
    study, new_study = Study.objects.get_or_create(
        hospital_id=hospital_id,
        study_instance_uid=header.study_uid,
        defaults={
            "patient": patient,
            "study_date": _date(header.value("StudyDate")),
            "study_time": header.text("StudyTime", 16),
            "accession_number": header.text("AccessionNumber", 16),
            "study_id": header.text("StudyID", 16),
            "description": header.text("StudyDescription"),
            "referring_physician": header.text("ReferringPhysicianName"),
            "dicom_patient_name": header.text("PatientName"),
            "dicom_patient_id": header.text("PatientID"),
            "dicom_birth_date": header.text("PatientBirthDate", 8),
            "dicom_sex": header.text("PatientSex", 16),
            "modalities": modality,
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
    if modality and modality not in study.modalities.split(","):
        study.modalities = ",".join(filter(None, [*study.modalities.split(","), modality]))[:64]
        study.save(update_fields=["modalities", "updated_at"])
    found = {
        "modality": modality,
        "body_part": header.text("BodyPartExamined"),
        "description": header.text("SeriesDescription"),
        "number": dicom.int_or_none(header.value("SeriesNumber")),
    }
    if new_study:
        series = Series.objects.create(study=study, series_instance_uid=header.series_uid, **found)
    else:
        series, _created = Series.objects.get_or_create(
            study=study, series_instance_uid=header.series_uid, defaults=found
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


def _queue_all(instance_ids: list[int]) -> None:
    """Queue a task per instance. For a batch the request publishes one message, and a worker publishes
    the instances' tasks: a publish costs about a millisecond that a STOW request of many images should
    not spend while a sender waits."""
    from diagnostics.tasks import instances_queue

    if len(instance_ids) == 1:
        _queue(instance_ids[0])
    elif instance_ids:
        instances_queue.delay(instance_ids)


# The pipeline (run by the Celery task).

# A reader gets the instance, its dataset, and its first frame as the viewer shows it (uint8, grey or RGB;
# None for an object without pixel data), so that it need not decode the image again.
Reader = Callable[[Instance, Any, np.ndarray | None], None]


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
        rendered, first = _previews_write(instance, header) if "PixelData" in header.dataset else (0, None)
    except (dicom.DicomInvalid, RuntimeError, ValueError, NotImplementedError, MemoryError) as exc:
        instance_fail(instance_id, _("The image cannot be decoded: %(reason)s") % {"reason": str(exc)[:300]})
        return False
    for reader in _readers():
        try:
            reader(instance, header.dataset, first)
        except Exception:  # a reader's fault must not hold back the image itself
            log.exception("imaging reader %r failed on instance %s", reader, instance_id)
    done = Instance.objects.filter(pk=instance_id, status=Instance.Status.PROCESSING).update(
        status=Instance.Status.READY, previews=rendered, error="", status_changed_at=timezone.now()
    )
    if done:
        study_id = instance.series.study_id
        transaction.on_commit(lambda: events.study_changed(study_id), robust=True)
    return bool(done)


def _previews_write(instance: Instance, header: dicom.Header) -> tuple[int, np.ndarray | None]:
    """Write every frame's rendering and the thumbnail; the count, and the first frame's display pixels."""
    count, first = 0, None
    for count, frame in enumerate(dicom.frames_render(header.dataset), start=1):
        storage_overwrite(instance.preview_name(count), frame.jpeg)
        if count == 1:
            first = frame.pixels
            storage_overwrite(instance.thumbnail_name, dicom.thumbnail(frame.jpeg))
    return count, first


def storage_keep_once(name: str, content: bytes) -> None:
    """Store bytes under a name made from their hash, once: if the name is taken, the same bytes are there."""
    if not default_storage.exists(name):
        saved = default_storage.save(name, _whole(content))
        if saved != name:
            # The same bytes arrived by another request meanwhile and took the name (storage gave this copy
            # another one): the name is the content, so keep theirs and drop the spare copy.
            default_storage.delete(saved)


def storage_overwrite(name: str, content: bytes) -> None:
    """Write a rendering under its server-made name, replacing what a previous run wrote there (the storage
    API would otherwise save beside it under a new name)."""
    if default_storage.exists(name):
        default_storage.delete(name)
    default_storage.save(name, _whole(content))


def _whole(content: bytes) -> ContentFile:
    """The bytes as a file that storage writes in one piece rather than in 64 KB chunks, each of them a
    copy, a call and a write of its own (the bytes are in memory already)."""
    file = ContentFile(content)
    file.DEFAULT_CHUNK_SIZE = max(len(content), 1)
    return file


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
            transaction.on_commit(lambda: _queue(instance.pk), robust=True)
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
