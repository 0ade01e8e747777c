"""Imaging pages: resumable browser uploads (protocol in diagnostics/uploads.py), the studies of a patient,
thumbnails, and "try again" for an image the pipeline could not read."""

import json
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnostics import selectors, services, uploads
from diagnostics.models import Instance, Upload
from hospitals.audit import Action, Outcome, audit_not_found, audit_record
from hospitals.models import User
from hospitals.scoping import access_record, request_scope
from patients.models import Patient
from patients.selectors import access_patient

CHUNK_TYPE = "application/offset+octet-stream"
THUMBNAIL_MAX_AGE = 24 * 3600  # the thumbnail of a content hash never changes; private: patient data


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)  # login_required stands before every view here


def _patient(request: HttpRequest, pk: int, action: str) -> Patient:
    try:
        return access_patient(request_scope(request), pk)
    except Http404:
        raise audit_not_found(request, action, "patients.patient", pk) from None


def _upload(request: HttpRequest, pk: int, action: str) -> Upload:
    try:
        return access_record(selectors.uploads_visible(request_scope(request)), pk)
    except Http404:
        raise audit_not_found(request, action, "diagnostics.upload", pk) from None


def _instance(request: HttpRequest, pk: int, action: str) -> Instance:
    instances = selectors.instances_visible(request_scope(request)).select_related("series__study")
    try:
        return access_record(instances, pk)
    except Http404:
        raise audit_not_found(request, action, "diagnostics.instance", pk) from None


# Uploads.


def _state(upload: Upload, *, again: bool = False) -> dict[str, Any]:
    """The upload as the client sees it. `again`: the file had arrived in full before, so what was stored
    then is "already" there now."""
    results = upload.results
    if again:
        already = _("These very images were stored before; nothing was added.")
        results = [
            {**r, "outcome": uploads.ALREADY, "message": already} if r.get("outcome") == uploads.STORED else r
            for r in results
        ]
    return {
        "id": upload.pk,
        "url": reverse("diagnostics:upload", args=[upload.pk]),
        "name": upload.name,
        "size": upload.size,
        "offset": upload.offset,
        "status": upload.status,
        "chunk": settings.IMAGING_UPLOAD_CHUNK_MAX_BYTES,
        "patient": upload.patient_id,
        "results": results,
        "studies": sorted({r["study"] for r in results if r.get("study")}),
    }


def _answer(upload: Upload, *, status: int = 200, again: bool = False, **extra: Any) -> JsonResponse:
    response = JsonResponse({**_state(upload, again=again), **extra}, status=status)
    response["Upload-Offset"] = str(upload.offset)
    response["Upload-Length"] = str(upload.size)
    response["Cache-Control"] = "no-store"
    return response


def _refused(code: str, detail: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status)


@require_POST
@login_required
def upload_create(request: HttpRequest, pk: int) -> JsonResponse:
    """Start (or find again, by the client's key) the upload of one file for this patient."""
    patient = _patient(request, pk, Action.CREATE)
    fields: Any = request.POST
    if request.content_type == "application/json":
        try:
            fields = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            fields = {}
        if not isinstance(fields, dict):
            fields = {}
    name, key = str(fields.get("name", ""))[:1000], str(fields.get("key", ""))[:2000]
    try:
        size = int(fields.get("size", ""))
    except (TypeError, ValueError):
        size = -1
    try:
        with transaction.atomic():
            upload, created = uploads.upload_start(patient=patient, by=_user(request), name=name, size=size, key=key)
            if created:
                audit_record(
                    request=request,
                    action=Action.CREATE,
                    obj=upload,
                    patient_id=patient.pk,
                    detail=f"upload of {upload.name}, {upload.size} bytes",
                )
    except uploads.UploadRefused as refusal:
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            object_type="diagnostics.upload",
            patient_id=patient.pk,
            detail=f"{name[:200]}, {size} bytes: {refusal}",
        )
        return _refused(refusal.code, str(refusal), 413 if isinstance(refusal, uploads.UploadTooLarge) else 400)
    response = _answer(
        upload, status=201 if created else 200, again=not created and upload.status == Upload.Status.DONE
    )
    response["Location"] = reverse("diagnostics:upload", args=[upload.pk])
    return response


@require_http_methods(["GET", "HEAD", "PATCH"])
@login_required
def upload_state(request: HttpRequest, pk: int) -> HttpResponse:
    """HEAD or GET: how far the upload is (after a drop, before sending on). PATCH: the next chunk."""
    upload = _upload(request, pk, Action.UPDATE if request.method == "PATCH" else Action.VIEW)
    if request.method == "PATCH":
        return _chunk(request, upload)
    if request.method == "HEAD":
        response = HttpResponse()
        response["Upload-Offset"], response["Upload-Length"] = str(upload.offset), str(upload.size)
        response["Cache-Control"] = "no-store"
        return response
    return _answer(upload)


def _chunk(request: HttpRequest, upload: Upload) -> HttpResponse:
    if request.content_type != CHUNK_TYPE:
        return _refused("content_type", _("Send the chunk as %(type)s.") % {"type": CHUNK_TYPE}, 415)
    try:
        offset = int(request.headers.get("Upload-Offset", ""))
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refused("offset_missing", _("Say where the chunk starts in an Upload-Offset header."), 400)
    limit = settings.IMAGING_UPLOAD_CHUNK_MAX_BYTES
    if length > limit:
        return _refused(
            "too_large",
            _("A chunk may be at most %(limit)s MB; send smaller ones.") % {"limit": limit // 2**20},
            413,
        )
    try:
        upload = uploads.upload_append(upload=upload, offset=offset, body=request, length=length)
    except uploads.OffsetMismatch as mismatch:
        return _answer(mismatch.upload, status=409, code=mismatch.code, detail=str(mismatch))
    except uploads.UploadRefused as refusal:
        return _refused(refusal.code, str(refusal), 400)
    if upload.status == Upload.Status.DONE and upload.offset == offset + length:  # refused by its first bytes
        _audit_done(request, upload)
    elif upload.offset == upload.size:
        if upload.status == Upload.Status.RECEIVING:
            audit_record(
                request=request,
                action=Action.CREATE,
                obj=upload,
                patient_id=upload.patient_id,
                detail=f"all {upload.size} bytes of {upload.name} received; storing",
            )
        upload = uploads.upload_complete(upload=upload)
    return _answer(upload)


def _audit_done(request: HttpRequest, upload: Upload) -> None:
    audit_record(
        request=request,
        action=Action.CREATE,
        outcome=Outcome.INVALID,
        obj=upload,
        patient_id=upload.patient_id,
        detail=f"{upload.name}: {upload.results[0]['message'] if upload.results else ''}",
    )


# The imaging section of the patient page.


@require_GET
@login_required
def patient_imaging(request: HttpRequest, pk: int) -> HttpResponse:
    """The patient's studies, series, thumbnails and the state of each image (the section refreshes itself)."""
    patient = _patient(request, pk, Action.LIST)
    studies = selectors.studies_visible(request_scope(request)).filter(patient=patient)
    audit_record(request=request, action=Action.LIST, object_type="diagnostics.study", patient_id=patient.pk)
    rows = selectors.studies_overview(studies)
    context = {
        "rows": rows,
        "pending": any(row.pending for row in rows),
        "patient": patient,
        "back": reverse("patient_detail", args=[pk]),
    }
    return render(request, "diagnostics/_studies.html", context)


@require_GET
@login_required
def instance_thumbnail(request: HttpRequest, pk: int) -> FileResponse:
    instance = _instance(request, pk, Action.VIEW)
    patient_id = instance.series.study.patient_id
    name = instance.thumbnail_name
    if instance.status != Instance.Status.READY or not default_storage.exists(name):
        audit_record(
            request=request,
            action=Action.VIEW,
            outcome=Outcome.NOT_FOUND,
            obj=instance,
            patient_id=patient_id,
            detail="thumbnail not made (yet)",
        )
        raise Http404
    audit_record(request=request, action=Action.VIEW, obj=instance, patient_id=patient_id, detail="thumbnail")
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/jpeg")
    patch_cache_control(response, private=True, max_age=THUMBNAIL_MAX_AGE)
    return response


@require_POST
@login_required
def instance_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue an image the pipeline failed on once more (say, after a decoder was installed)."""
    instance = _instance(request, pk, Action.UPDATE)
    study = instance.series.study
    queued = services.instance_reprocess(instance)
    audit_record(
        request=request,
        action=Action.UPDATE,
        outcome=Outcome.SUCCESS if queued else Outcome.INVALID,
        obj=instance,
        patient_id=study.patient_id,
        detail="try again" if queued else "try again: not failed",
    )
    if request.htmx:  # type: ignore[attr-defined]
        # Refresh the section showing it (the pipeline's own events follow as it gets on).
        response = HttpResponse(status=204)
        response["HX-Trigger"] = json.dumps(
            {"mh:study": {"kind": "study", "id": study.pk, "patient": study.patient_id}}
        )
        return response
    if queued:
        messages.success(request, _("The image is queued to be read again."))
    else:
        messages.info(request, _("This image is not failed (any more); there is nothing to try again."))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("patient_detail", args=[study.patient_id])
    return redirect(back)
