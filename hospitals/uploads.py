"""Checks every uploaded document passes: a size limit and a real type, recognised by its first bytes."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db.models.fields.files import FieldFile
from django.http import FileResponse
from django.utils.translation import gettext_lazy as _

# PDF, JPEG and PNG are what scanners, phones and lab printers produce; nothing executable gets in.
DOCUMENT_SIGNATURES = {b"%PDF-": "PDF", b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


def document_check(upload: UploadedFile, *, max_bytes: int) -> UploadedFile:
    if upload.size is not None and upload.size > max_bytes:
        raise ValidationError(
            _("The file is %(size)s MB; the limit is %(limit)s MB. Scan or save it at a lower resolution."),
            code="too_large",
            params={"size": upload.size // 2**20, "limit": max_bytes // 2**20},
        )
    head = upload.read(16)
    upload.seek(0)
    if not any(head.startswith(signature) for signature in DOCUMENT_SIGNATURES):
        raise ValidationError(
            _("This file is not a PDF, JPEG or PNG, whatever its name says. Attach the document itself."),
            code="file_type",
        )
    return upload


def document_download(stored: FieldFile) -> FileResponse:
    """A stored document as a download (the caller has checked access and written the audit row)."""
    return FileResponse(stored.open("rb"), as_attachment=True, filename=Path(stored.name or "document").name)
