"""Resumable browser uploads of imaging: a small protocol with offsets, in the manner of tus 1.0.

Links from regional hospitals and trains are slow and drop, so a file travels in chunks, each a request of
its own, and the server always knows how many bytes it holds:

    POST  /imaging/patients/<patient>/uploads/   {"name", "size", "key"}
          -> 201 (new) or 200 (the same user's upload of the same key for this patient: resume it)
             {"id", "url", "offset", "size", "status", "results", ...}; 413 if `size` passes the limit
    HEAD  /imaging/uploads/<id>/                 -> Upload-Offset and Upload-Length headers
    GET   /imaging/uploads/<id>/                 -> the state, as above
    PATCH /imaging/uploads/<id>/                 Upload-Offset: <n>, Content-Type: application/offset+octet-stream,
                                                 a body of at most IMAGING_UPLOAD_CHUNK_MAX_BYTES
          -> 200 and the state; 409 with the server's offset if <n> is not it

`key` is the client's name for the file (its path, size and modification time): after a drop, or a reload
of the page, the client creates the upload again with the same key, is handed the same upload, asks its
offset and goes on from there. With the last byte the upload is stored (a Celery task; status "storing"
until it is "done"): the file, or every DICOM file of a ZIP archive, through services.instance_store, so
bytes that arrived before are "already" there and never duplicated. A PATCH with no body at the final
offset finishes an upload whose storing was interrupted.
"""

import hashlib
import logging
import tempfile
import unicodedata
from collections.abc import Iterable
from datetime import timedelta
from typing import IO, Any, Protocol

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _

from diagnostics import archive, dicom
from diagnostics.models import Instance, Upload
from diagnostics.services import ImagingRefused, instance_store
from hospitals.audit import Action, audit_record
from hospitals.errors import Refused
from patients.models import Patient

log = logging.getLogger(__name__)

Outcome = dict[str, Any]
STORED, ALREADY, REFUSED, SKIPPED = "stored", "already", "refused", "skipped"
# How long a "storing" upload may go unfinished before the sweep queues its storing again.
STORING_STALE = timedelta(minutes=15)


class UploadRefused(Refused):
    code = "upload_refused"


class UploadTooLarge(UploadRefused):
    code = "too_large"


class OffsetMismatch(UploadRefused):
    """The chunk does not start where the server's bytes end; `upload` holds the server's state."""

    code = "offset_mismatch"

    def __init__(self, upload: Upload) -> None:
        super().__init__(
            _("The server holds %(offset)s bytes of this file; send the rest from there.") % {"offset": upload.offset}
        )
        self.upload = upload


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def upload_start(*, patient: Patient, by: Any, name: str, size: int, key: str) -> tuple[Upload, bool]:
    """The upload to send a file into: the same user's earlier one for this file and patient, if it can
    still serve, or a new one. Returns (upload, created)."""
    name = _display_name(name) or "—"
    limit = settings.IMAGING_UPLOAD_MAX_BYTES
    if size > limit:
        raise UploadTooLarge(
            _(
                "“%(name)s” is %(size)s MB; one upload may be at most %(limit)s MB. Split the study into smaller "
                "archives, or upload its folder."
            )
            % {"name": name, "size": size // 2**20, "limit": limit // 2**20}
        )
    if size <= 0:
        raise UploadRefused(_("“%(name)s” is empty: there is nothing to upload.") % {"name": name})
    digest = hashlib.sha256(key.encode()).hexdigest()
    earlier = (
        Upload.objects.filter(owner=by, patient=patient, key=digest, size=size).order_by("-pk").first() if key else None
    )
    # A finished upload answers for the file again only if nothing of it was refused: a refusal may have
    # been put right since (a limit raised), and then the bytes must come again.
    if earlier is not None and not any(r.get("outcome") == REFUSED for r in earlier.results):
        return earlier, False
    return Upload.objects.create(owner=by, patient=patient, name=name, key=digest, size=size), True


def _display_name(name: str) -> str:
    """The browser's name for the file, fit to show: no control characters, at most 255 characters."""
    return "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()[:255]


def upload_append(*, upload: Upload, offset: int, body: Readable, length: int) -> Upload:
    """Take one chunk that starts at `offset`; raises OffsetMismatch unless the server's bytes end there."""
    finishing = length == 0 and offset == upload.offset == upload.size and upload.status == Upload.Status.STORING
    if finishing:
        return upload  # an empty chunk at the end asks to finish: see upload_complete
    if upload.status != Upload.Status.RECEIVING or offset != upload.offset:
        raise OffsetMismatch(upload)
    if offset + length > upload.size:
        raise UploadRefused(
            _("This chunk would take “%(name)s” past the %(size)s bytes announced for it; start the file again.")
            % {"name": upload.name, "size": upload.size}
        )
    if length == 0:
        return upload
    with tempfile.SpooledTemporaryFile(max_size=2**20, dir=settings.FILE_UPLOAD_TEMP_DIR) as chunk:
        head, received = _copy(body, chunk, length)
        if received != length:  # the link dropped within the chunk: keep nothing of it
            raise OffsetMismatch(upload)
        chunk.seek(0)
        part = default_storage.save(
            f"{upload.part_folder}/{offset:013d}-{get_random_string(8)}.part", File(chunk, name="part")
        )
    with transaction.atomic():
        current = Upload.objects.select_for_update().get(pk=upload.pk)
        late = current.status != Upload.Status.RECEIVING or current.offset != offset
        if not late:
            _part_record(current, offset, length, part, head)
    if late:
        # Another request brought these bytes first (a retry racing the original): theirs stand.
        default_storage.delete(part)
        raise OffsetMismatch(current)
    return current


def _part_record(current: Upload, offset: int, length: int, part: str, head: bytes) -> None:
    current.parts = [*current.parts, [offset, length, part]]
    current.offset = offset + length
    refusal = _refusal_by_first_bytes(head) if offset == 0 else ""
    if refusal:
        # Not worth the rest of a slow link's time: say so now.
        current.results = [_outcome(current.name, REFUSED, refusal)]
        current.status = Upload.Status.DONE
        parts = current.parts
        transaction.on_commit(lambda: _parts_delete(parts))
    current.save(update_fields=["parts", "offset", "results", "status", "updated_at"])


def _copy(body: Readable, target: IO[bytes], length: int) -> tuple[bytes, int]:
    received, head = 0, b""
    while received < length:
        piece = body.read(min(2**16, length - received))
        if not piece:
            break
        if len(head) < 132:
            head += piece[: 132 - len(head)]
        target.write(piece)
        received += len(piece)
    return head, received


def _refusal_by_first_bytes(head: bytes) -> str:
    """Why the file cannot be DICOM or a ZIP archive, from its first 132 bytes; empty if it may be."""
    if len(head) < 132 or archive.is_zip(head) or head[128:132] == b"DICM":
        return ""
    try:
        dicom.header_read(head)
    except dicom.DicomInvalid as exc:
        return str(exc)
    return ""


def upload_complete(*, upload: Upload) -> Upload:
    """With all bytes in, queue the storing (once). Also resumes a storing that was interrupted."""
    stale = timezone.now() - STORING_STALE
    received = Upload.objects.filter(pk=upload.pk, offset=upload.size)
    claimed = received.filter(status=Upload.Status.RECEIVING).update(
        status=Upload.Status.STORING, updated_at=timezone.now()
    ) or received.filter(status=Upload.Status.STORING, updated_at__lt=stale).update(updated_at=timezone.now())
    if claimed:
        transaction.on_commit(lambda: _queue(upload.pk), robust=True)
    return Upload.objects.get(pk=upload.pk)


def _queue(upload_id: int) -> None:
    from diagnostics.tasks import upload_store

    upload_store.delay(upload_id)


def upload_store(upload_id: int) -> bool:
    """Store what a complete upload holds (the Celery task's body). Safe to run twice: instance_store
    finds the instances of the first run. Returns whether there was anything to do."""
    upload = Upload.objects.select_related("patient").filter(pk=upload_id, status=Upload.Status.STORING).first()
    if upload is None:
        return False
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as whole:
        for _offset, _length, name in upload.parts:
            with default_storage.open(name, "rb") as part:
                while piece := part.read(2**20):
                    whole.write(piece)
        whole.seek(0)
        results = list(_store_file(upload, whole))
    with transaction.atomic():
        done = Upload.objects.filter(pk=upload.pk, status=Upload.Status.STORING).update(
            status=Upload.Status.DONE, results=results, updated_at=timezone.now()
        )
        if done:
            upload.results = results
            counts = upload_summary(upload)
            audit_record(
                request=None,
                user=upload.owner,
                action=Action.CREATE,
                obj=upload,
                patient_id=upload.patient_id,
                detail=f"{upload.name}: {counts[STORED]} stored, {counts[ALREADY]} already there, "
                f"{counts[REFUSED]} refused",
            )
            transaction.on_commit(lambda: _parts_delete(upload.parts))
    return bool(done)


def _store_file(upload: Upload, whole: IO[bytes]) -> Iterable[Outcome]:
    head = whole.read(132)
    whole.seek(0)
    if not archive.is_zip(head):
        yield _store_one(upload, upload.name, whole.read())
        return
    limits = archive.Limits(
        entries=settings.IMAGING_ZIP_MAX_ENTRIES,
        entry_bytes=settings.IMAGING_UPLOAD_MAX_BYTES,
        total_bytes=settings.IMAGING_ZIP_MAX_UNPACKED_BYTES,
        ratio=settings.IMAGING_ZIP_MAX_RATIO,
    )
    try:
        for entry in archive.entries_read(whole, limits):
            name = f"{upload.name}: {_display_name(entry.name)}"
            if entry.data is not None:
                yield _store_one(upload, name, entry.data)
            elif entry.skipped:
                yield _outcome(name, SKIPPED, _("Not an image (a disc index or a system file); left out."))
            else:
                yield _outcome(name, REFUSED, entry.refused)
    except archive.ArchiveRefused as exc:
        yield _outcome(upload.name, REFUSED, str(exc))


def _store_one(upload: Upload, name: str, data: bytes) -> Outcome:
    try:
        stored = instance_store(
            data=data,
            hospital_id=upload.patient.hospital_id,
            source=Instance.Source.BROWSER,
            patient=upload.patient,
            by=upload.owner,
        )
    except (dicom.DicomInvalid, ImagingRefused) as exc:
        return _outcome(name, REFUSED, str(exc))
    study = stored.instance.series.study_id
    if stored.created:
        return _outcome(name, STORED, _("The images are being prepared for viewing."), study)
    return _outcome(name, ALREADY, _("These very images were stored before; nothing was added."), study)


def _outcome(name: str, outcome: str, message: str, study: int | None = None) -> Outcome:
    return {"name": name, "outcome": outcome, "message": message, "study": study}


def _parts_delete(parts: list[list[Any]]) -> None:
    for _offset, _length, name in parts:
        try:
            default_storage.delete(name)
        except OSError:  # the sweep has another go at what is left
            log.warning("could not delete upload part %s", name)


def uploads_sweep() -> int:
    """Periodic: queue again the storing of uploads stuck in "storing" (a lost task, a dead worker), and
    drop uploads, with their parts, untouched for IMAGING_UPLOAD_KEEP_DAYS. Returns how many were dropped."""
    now = timezone.now()
    stuck = Upload.objects.filter(status=Upload.Status.STORING, updated_at__lt=now - STORING_STALE)
    for pk in list(stuck.values_list("pk", flat=True)[:500]):
        Upload.objects.filter(pk=pk).update(updated_at=now)
        _queue(pk)
    old = Upload.objects.filter(updated_at__lt=now - timedelta(days=settings.IMAGING_UPLOAD_KEEP_DAYS))
    dropped = 0
    for upload in old.exclude(status=Upload.Status.STORING)[:500]:
        try:
            _parts_delete(upload.parts)
            upload.delete()
        except DatabaseError:
            log.exception("could not drop upload %s", upload.pk)
            continue
        dropped += 1
    return dropped


def upload_summary(upload: Upload) -> dict[str, int]:
    counts = dict.fromkeys((STORED, ALREADY, REFUSED, SKIPPED), 0)
    for result in upload.results:
        counts[result.get("outcome", REFUSED)] = counts.get(result.get("outcome", REFUSED), 0) + 1
    return counts
