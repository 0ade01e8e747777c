"""Recording pages: the Recordings card of the patient page (upload form and list), the original file for the
in-page player (with byte ranges, so the player can seek), the drawn pictures, and "try again"."""

import json
import re
from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnostics import recordings, selectors
from diagnostics.models import Recording
from diagnostics.recording_formats import CONTENT_TYPE, STORED_EXTENSION
from diagnostics.recording_forms import RecordingUploadForm
from hospitals.audit import Action, Outcome, audit_not_found, audit_record
from hospitals.models import User
from hospitals.scoping import access_record, request_scope
from patients.models import Patient
from patients.selectors import access_patient

PICTURES = ("waveform", "spectrogram", "trace")
PICTURE_MAX_AGE = 24 * 3600  # a recording's pictures change only when it is processed again; private: patient data
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _patient(request: HttpRequest, pk: int, action: str) -> Patient:
    try:
        return access_patient(request_scope(request), pk)
    except Http404:
        raise audit_not_found(request, action, "patients.patient", pk) from None


def _recording(request: HttpRequest, pk: int, action: str) -> Recording:
    try:
        return access_record(selectors.recordings_visible(request_scope(request)), pk)
    except Http404:
        raise audit_not_found(request, action, "diagnostics.recording", pk) from None


def _card_context(patient: Patient, form: RecordingUploadForm) -> dict[str, object]:
    return {
        "patient": patient,
        "form": form,
        "upload_url": reverse("diagnostics:recording_upload", args=[patient.pk]),
        "list_url": reverse("diagnostics:patient_recordings", args=[patient.pk]),
        "back": reverse("patient_detail", args=[patient.pk]),
    }


@require_GET
@login_required
def patient_recordings(request: HttpRequest, pk: int) -> HttpResponse:
    """The body of the Recordings card: the upload form and the patient's recordings, each with its state
    (the list refreshes itself on the pipeline's events)."""
    patient = _patient(request, pk, Action.LIST)
    items = list(selectors.recordings_visible(request_scope(request)).filter(patient=patient))
    audit_record(request=request, action=Action.LIST, object_type="diagnostics.recording", patient_id=patient.pk)
    context = {
        **_card_context(patient, RecordingUploadForm()),
        "recordings": items,
        "pending": any(item.status in (Recording.Status.QUEUED, Recording.Status.PROCESSING) for item in items),
    }
    return render(request, "diagnostics/_recordings_body.html", context)


@require_POST
@login_required
def recording_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Store the files of the form; each refusal is named (file and field) and audited, and costs only its file.
    All taken: back to the patient page. Something refused: this form again, 400 (413 when only sizes were)."""
    patient = _patient(request, pk, Action.CREATE)
    form = RecordingUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        reasons = "; ".join(str(error) for errors in form.errors.values() for error in errors)
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            object_type="diagnostics.recording",
            patient_id=patient.pk,
            detail=reasons,
        )
        return _upload_page(request, patient, form, [], status=400)
    data = form.cleaned_data
    outcomes = recordings.recordings_store(
        files=[(file.name or "", file.read()) for file in data["file"]],
        kind=data["kind"],
        patient=patient,
        by=cast(User, request.user),
        sample_rate=data["sample_rate"],
        recorded_at=data["recorded_at"],
    )
    for outcome in outcomes:
        _audit(request, patient, outcome)
    refused = [outcome.refusal for outcome in outcomes if outcome.refusal is not None]
    if refused:
        for refusal in refused:
            form.add_error(refusal.field if refusal.field in form.fields else None, str(refusal))
        status = 413 if all(refusal.code == "too_large" for refusal in refused) else 400
        return _upload_page(request, patient, form, outcomes, status=status)
    added = sum(outcome.created for outcome in outcomes)
    if added:
        messages.success(
            request,
            ngettext(
                "%(count)s recording stored; it is being prepared for listening and viewing.",
                "%(count)s recordings stored; they are being prepared for listening and viewing.",
                added,
            )
            % {"count": added},
        )
    if added < len(outcomes):
        messages.info(request, _("Some of these recordings were stored before; nothing was added for them."))
    return redirect(reverse("patient_detail", args=[patient.pk]) + "#recordings")


def _audit(request: HttpRequest, patient: Patient, outcome: recordings.BatchOutcome) -> None:
    if outcome.stored is None:
        audit_record(
            request=request,
            action=Action.CREATE,
            outcome=Outcome.INVALID,
            object_type="diagnostics.recording",
            patient_id=patient.pk,
            detail=f"{outcome.name[:200]}: {outcome.refusal}",
        )
        return
    recording = outcome.stored.recording
    audit_record(
        request=request,
        action=Action.CREATE,
        obj=recording,
        patient_id=patient.pk,
        detail=(
            f"{recording.kind} {outcome.name[:200]}, {recording.size} bytes"
            if outcome.created
            else f"{outcome.name[:200]}: stored before, nothing added"
        ),
    )


def _upload_page(
    request: HttpRequest,
    patient: Patient,
    form: RecordingUploadForm,
    outcomes: list[recordings.BatchOutcome],
    *,
    status: int,
) -> HttpResponse:
    context = {**_card_context(patient, form), "outcomes": outcomes}
    return render(request, "diagnostics/recording_upload.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
@login_required
def recording_file(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The file as it was stored (a sound plays in the page; an ECG downloads); one byte range if asked."""
    recording = _recording(request, pk, Action.VIEW)
    size = recording.size
    try:
        asked = _byte_range(request.headers.get("Range", ""), size)
    except _Unsatisfiable:
        audit_record(
            request=request,
            action=Action.VIEW,
            outcome=Outcome.INVALID,
            obj=recording,
            patient_id=recording.patient_id,
            detail=f"file: range {request.headers.get('Range', '')[:60]} outside {size} bytes",
        )
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    detail = "file" if asked is None else f"file, bytes {asked[0]}-{asked[1]}"
    audit_record(request=request, action=Action.VIEW, obj=recording, patient_id=recording.patient_id, detail=detail)
    content_type = CONTENT_TYPE[recording.format]
    stem = recording.original_name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or "recording"
    filename = f"{stem}.{STORED_EXTENSION[recording.format]}"
    stored = default_storage.open(recording.file.name, "rb")
    response: HttpResponseBase
    if asked is None:
        response = FileResponse(
            stored, content_type=content_type, as_attachment=not recording.is_sound, filename=filename
        )
    else:
        start, end = asked
        with stored:
            stored.seek(start)
            piece = stored.read(end - start + 1)
        response = HttpResponse(piece, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    patch_cache_control(response, private=True, max_age=PICTURE_MAX_AGE)
    return response


class _Unsatisfiable(Exception):
    """The range asked for lies outside the file (416)."""


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single range request; None to send the whole file (no range, several ranges or
    one this does not read, as RFC 9110 allows). Raises _Unsatisfiable when it starts past the end."""
    match = _RANGE.match(header.replace(" ", ""))
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        if not (suffix and size):
            raise _Unsatisfiable
        return max(size - suffix, 0), size - 1
    start = int(match[1])
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    if start >= size or end < start:
        raise _Unsatisfiable
    return start, end


@require_GET
@login_required
def recording_picture(request: HttpRequest, pk: int, picture: str) -> FileResponse:
    """The waveform, spectrogram (a sound's) or ECG trace the pipeline drew."""
    recording = _recording(request, pk, Action.VIEW)
    name = getattr(recording, picture).name if picture in PICTURES else ""
    if recording.status != Recording.Status.READY or not name or not default_storage.exists(name):
        audit_record(
            request=request,
            action=Action.VIEW,
            outcome=Outcome.NOT_FOUND,
            obj=recording,
            patient_id=recording.patient_id,
            detail=f"{picture[:20]}: not drawn (yet)",
        )
        raise Http404
    audit_record(request=request, action=Action.VIEW, obj=recording, patient_id=recording.patient_id, detail=picture)
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/png")
    patch_cache_control(response, private=True, max_age=PICTURE_MAX_AGE)
    return response


@require_POST
@login_required
def recording_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a recording the pipeline failed on once more."""
    recording = _recording(request, pk, Action.UPDATE)
    queued = recordings.recording_reprocess(recording)
    audit_record(
        request=request,
        action=Action.UPDATE,
        outcome=Outcome.SUCCESS if queued else Outcome.INVALID,
        obj=recording,
        patient_id=recording.patient_id,
        detail="try again" if queued else "try again: not failed",
    )
    if request.htmx:  # type: ignore[attr-defined]
        response = HttpResponse(status=204)
        event = {"kind": "recording", "id": recording.pk, "patient": recording.patient_id}
        response["HX-Trigger"] = json.dumps({"mh:recording": event})
        return response
    if queued:
        messages.success(request, _("The recording is queued to be processed again."))
    else:
        messages.info(request, _("This recording is not failed (any more); there is nothing to try again."))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("patient_detail", args=[recording.patient_id]) + "#recordings"
    return redirect(back)
