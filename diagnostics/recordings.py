"""Writes of recordings (stethoscope sounds, ECGs): store one from any way in, a browser's batch, and the
pipeline that draws them and counts an ECG's heart rate.

`recording_store` is the one way in: the patient page calls it for each file of a batch, and a device
endpoint (a stethoscope or ECG recorder with its own token) calls it with `device=`. The bytes are stored
once per hospital under their SHA-256, the row in the same transaction, and the pipeline task is queued
once that commits.
"""

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from diagnostics import events
from diagnostics import recording_formats as formats
from diagnostics.models import Recording
from diagnostics.recording_formats import Part, RecordingRefused
from diagnostics.services import storage_keep_once, storage_overwrite
from patients.models import Patient

log = logging.getLogger(__name__)

__all__ = [
    "BatchOutcome",
    "RecordingRefused",
    "StoredRecording",
    "recording_fail",
    "recording_process",
    "recording_reprocess",
    "recording_store",
    "recordings_requeue_stuck",
    "recordings_store",
]


@dataclass(frozen=True)
class StoredRecording:
    recording: Recording
    created: bool  # False: these very bytes had arrived before for this patient, and nothing was added
    parts: tuple[str, ...] = ()  # the companion files the recording took (a WFDB header's signal files)


def recording_store(
    *,
    data: bytes,
    filename: str,
    kind: str,
    patient: Patient,
    hospital_id: int,
    by: Any = None,
    device: Any = None,
    sample_rate: float | None = None,
    recorded_at: datetime | None = None,
    companions: dict[str, bytes] | None = None,
) -> StoredRecording:
    """Check, store and queue one recording of `patient` (already checked to be the caller's to write).

    `filename` is shown, never used as a path; its extension says how to read the bytes (.wav, .flac, .ogg,
    .mp3; .hea for a WFDB header whose signal files are in `companions` by name; .zip for a WFDB record
    packed whole; .csv for leads, with `sample_rate` in Hz unless a time column gives it). `device` is the
    sending device (any object with a pk), for device endpoints. Raises RecordingRefused, whose `field`
    names the form field at fault; a refusal leaves nothing behind."""
    if patient.hospital_id != hospital_id:
        raise RecordingRefused(_("This patient is not a patient of the hospital the recording is filed under."))
    if kind not in Recording.Kind.values:
        raise RecordingRefused(_("Kind: choose heart sound, lung sound or ECG."), field=formats.KIND, code="kind")
    part = Part(formats.display_name(filename), data)
    if formats.is_archive(part):
        part, companions = _record_in_archive(part)
    checked = formats.recording_check(part, kind=kind, sample_rate=sample_rate, companions=companions)
    digest = hashlib.sha256(checked.data).hexdigest()
    existing = Recording.objects.filter(hospital_id=hospital_id, sha256=digest).first()
    if existing is not None:
        return _same_patient(existing, patient, part, checked)
    name = f"recordings/{digest[:2]}/{digest[2:4]}/{digest}.{formats.STORED_EXTENSION[checked.format]}"
    storage_keep_once(name, checked.data)
    device_id = getattr(device, "pk", None)
    try:
        with transaction.atomic():
            recording = Recording.objects.create(
                hospital_id=hospital_id,
                patient=patient,
                kind=kind,
                format=checked.format,
                encoding=checked.encoding,
                file=name,
                original_name=part.name,
                size=len(checked.data),
                sha256=digest,
                recorded_at=recorded_at or checked.recorded_at,
                duration_s=checked.duration_s,
                sample_rate=checked.sample_rate,
                channels=checked.channels,
                leads=",".join(lead.replace(",", " ") for lead in checked.leads)[:255],
                source=Recording.Source.DEVICE if device_id else Recording.Source.BROWSER,
                device_id=device_id,
                uploaded_by=by if getattr(by, "pk", None) else None,
            )
            transaction.on_commit(lambda: _queue(recording.pk), robust=True)
    except IntegrityError:  # the same bytes arrived at the same moment by another way in
        existing = Recording.objects.filter(hospital_id=hospital_id, sha256=digest).first()
        if existing is None:
            raise
        return _same_patient(existing, patient, part, checked)
    return StoredRecording(recording, created=True, parts=checked.parts)


def _same_patient(existing: Recording, patient: Patient, part: Part, checked: formats.Checked) -> StoredRecording:
    if existing.patient_id != patient.pk:
        raise RecordingRefused(
            _(
                "“%(name)s” is already filed under another patient of the hospital; a recording belongs to one "
                "patient. Check that this is the right patient's file."
            )
            % {"name": part.name},
            code="another_patient",
        )
    return StoredRecording(existing, created=False, parts=checked.parts)


def _record_in_archive(part: Part) -> tuple[Part, dict[str, bytes]]:
    """The WFDB header of an archive that holds one record, and the archive's files by name."""
    parts, refused = formats.archive_parts(part)
    if refused:
        raise refused[0][1]
    headers = [inner for inner in parts if formats.is_header(inner)]
    if len(headers) != 1:
        raise RecordingRefused(
            _(
                "“%(name)s”: a ZIP archive of a recording holds one WFDB record (one .hea file and the signal files "
                "it names); this one holds %(count)s headers."
            )
            % {"name": part.name, "count": len(headers)},
            code="wfdb_archive",
        )
    return headers[0], formats.parts_named(parts)


# A browser's batch.


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one file (or one WFDB record) of a batch: stored, or refused with the reason."""

    name: str
    stored: StoredRecording | None = None
    refusal: RecordingRefused | None = None

    @property
    def created(self) -> bool:
        return self.stored is not None and self.stored.created


def recordings_store(
    *,
    files: Sequence[tuple[str, bytes]],
    kind: str,
    patient: Patient,
    by: Any = None,
    device: Any = None,
    sample_rate: float | None = None,
    recorded_at: datetime | None = None,
) -> list[BatchOutcome]:
    """Store each recording among `files` (name, bytes): sounds and CSVs one by one, a WFDB header with the
    signal files it names (sent beside it, or in the same ZIP archive). One refusal costs only its file."""
    loose: list[Part] = []
    pools: list[list[Part]] = []
    outcomes: list[BatchOutcome] = []
    for name, data in files:
        part = Part(formats.display_name(name), data)
        if formats.is_archive(part):
            inner, refused = formats.archive_parts(part)
            outcomes += [BatchOutcome(entry, refusal=refusal) for entry, refusal in refused]
            pools.append(inner)
        else:
            loose.append(part)
    pools.insert(0, loose)
    for pool in pools:
        outcomes += _pool_store(
            pool,
            kind=kind,
            patient=patient,
            by=by,
            device=device,
            sample_rate=sample_rate,
            recorded_at=recorded_at,
        )
    return outcomes


def _pool_store(pool: list[Part], **common: Any) -> list[BatchOutcome]:
    """The files of one place (the loose files, or one archive): each header takes the signal files it names."""
    headers = [part for part in pool if formats.is_header(part)]
    named = {name for header in headers for name in formats.wfdb_file_names(header.data)}
    companions = formats.parts_named([part for part in pool if not formats.is_header(part)])
    outcomes = []
    for part in pool:
        if not formats.is_header(part) and part.base in named:
            continue  # a signal file, stored with its header's record
        outcomes.append(_one(part, companions if formats.is_header(part) else None, **common))
    return outcomes


def _one(part: Part, companions: dict[str, bytes] | None, *, patient: Patient, **common: Any) -> BatchOutcome:
    try:
        stored = recording_store(
            data=part.data,
            filename=part.name,
            patient=patient,
            hospital_id=patient.hospital_id,
            companions=companions,
            **common,
        )
    except RecordingRefused as refusal:
        return BatchOutcome(part.name, refusal=refusal)
    return BatchOutcome(part.name, stored=stored)


def _queue(recording_id: int) -> None:
    from diagnostics.tasks import recording_process

    recording_process.delay(recording_id)


# The pipeline (run by the Celery task).


@dataclass
class _Drawn:
    pictures: dict[str, bytes]
    lead: str = ""
    heart_rate_bpm: float | None = None
    beats: int | None = None


def recording_process(recording_id: int) -> bool:
    """Decode a recording, draw its waveform (and a sound's spectrogram, an ECG's trace), count an ECG's
    heart rate, mark it ready.

    Safe to run twice and after a worker died half-way: pictures are overwritten by name, and only the run
    that moves the row from processing to ready announces it. Returns whether this run did."""
    claimed = Recording.objects.filter(
        pk=recording_id, status__in=[Recording.Status.QUEUED, Recording.Status.PROCESSING]
    )
    if not claimed.update(
        status=Recording.Status.PROCESSING, attempts=F("attempts") + 1, status_changed_at=timezone.now()
    ):
        return False  # ready or failed already, or gone
    recording = Recording.objects.get(pk=recording_id)
    with default_storage.open(recording.file.name, "rb") as stored:
        data = stored.read()
    try:
        signal = formats.signal_read(
            format=recording.format, name=recording.original_name, data=data, sample_rate=recording.sample_rate
        )
        drawn = _draw(recording, signal)
    except RecordingRefused as refusal:
        recording_fail(recording_id, str(refusal))
        return False
    except (RuntimeError, ValueError, IndexError, MemoryError) as exc:
        log.warning("recording %s cannot be processed", recording_id, exc_info=True)
        reason = str(exc)[:300] or type(exc).__name__
        recording_fail(recording_id, _("The recording cannot be decoded: %(reason)s") % {"reason": reason})
        return False
    names = {}
    for picture, content in drawn.pictures.items():
        names[picture] = f"{recording.rendering_folder}/{picture}.png"
        storage_overwrite(names[picture], content)
    done = Recording.objects.filter(pk=recording_id, status=Recording.Status.PROCESSING).update(
        status=Recording.Status.READY,
        error="",
        status_changed_at=timezone.now(),
        waveform=names.get("waveform", ""),
        spectrogram=names.get("spectrogram", ""),
        trace=names.get("trace", ""),
        lead=drawn.lead[:32],
        heart_rate_bpm=drawn.heart_rate_bpm,
        beats=drawn.beats,
    )
    if done:
        transaction.on_commit(lambda: events.recording_changed(recording_id), robust=True)
    return bool(done)


def _draw(recording: Recording, signal: formats.Signal) -> _Drawn:
    from diagnostics import recording_render as render

    if not len(signal.samples):
        raise RecordingRefused(_("“%(name)s” holds no samples.") % {"name": recording.original_name})
    if recording.kind != Recording.Kind.ECG:
        sound = signal.samples[:, 0]
        return _Drawn(
            {
                "waveform": render.waveform_png(sound, signal.sample_rate),
                "spectrogram": render.spectrogram_png(
                    sound, signal.sample_rate, top_hz=render.SPECTROGRAM_TOP_HZ[recording.kind]
                ),
            }
        )
    column = render.lead_choose(signal.names)
    lead = signal.samples[:, column]
    rate, beats = render.heart_rate(lead, signal.sample_rate)
    return _Drawn(
        {
            "waveform": render.waveform_png(lead, signal.sample_rate),
            "trace": render.ecg_trace_png(lead, signal.sample_rate),
        },
        lead=signal.names[column] if column < len(signal.names) else "",
        heart_rate_bpm=rate,
        beats=beats,
    )


def recording_fail(recording_id: int, reason: str) -> None:
    changed = (
        Recording.objects.filter(pk=recording_id)
        .exclude(status=Recording.Status.READY)
        .update(status=Recording.Status.FAILED, error=reason[:500], status_changed_at=timezone.now())
    )
    if changed:
        transaction.on_commit(lambda: events.recording_changed(recording_id), robust=True)


def recording_reprocess(recording: Recording) -> bool:
    """Queue a failed recording again (the user's "try again"); False when it is not failed."""
    with transaction.atomic():
        queued = Recording.objects.filter(pk=recording.pk, status=Recording.Status.FAILED).update(
            status=Recording.Status.QUEUED, error="", attempts=0, status_changed_at=timezone.now()
        )
        if queued:
            transaction.on_commit(lambda: _queue(recording.pk), robust=True)
    return bool(queued)


def recordings_requeue_stuck() -> int:
    """Periodic: queue again what has sat queued or processing too long (a lost message, a dead worker).
    A recording that has taken down the worker RECORDING_MAX_ATTEMPTS times is failed instead, so one file
    too big to decode does not loop through the workers for ever."""
    since = timezone.now() - timedelta(minutes=settings.RECORDING_STUCK_MINUTES)
    stuck = Recording.objects.filter(
        status__in=[Recording.Status.QUEUED, Recording.Status.PROCESSING], status_changed_at__lt=since
    )
    limit = settings.RECORDING_MAX_ATTEMPTS
    for pk in stuck.filter(attempts__gte=limit).values_list("pk", flat=True)[:1000]:
        recording_fail(
            pk,
            _(
                "Processing stopped %(tries)s times without finishing (the worker ran out of time or memory); "
                "try again later, or send a shorter recording."
            )
            % {"tries": limit},
        )
    again = list(stuck.filter(attempts__lt=limit).values_list("pk", flat=True)[:1000])
    Recording.objects.filter(pk__in=again).update(status_changed_at=timezone.now())
    for pk in again:
        _queue(pk)
    return len(again)
