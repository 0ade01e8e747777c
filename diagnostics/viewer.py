"""The image viewer: the page, a series' metadata, frames (pre-rendered JPEG or raw values for true
window/level), a series' thumbnail, and the de-identified export. Every read starts from the patient scope
(diagnostics.selectors); anything outside it is a 404 like a missing record.

Auditing: the page and each series' metadata are recorded (the metadata is what lists a series' images, so
every image a user can scroll to was recorded as viewed). Frame and thumbnail requests are not recorded
when they succeed: a 120-frame cine would write 120 rows per look and bury the trail. A frame or thumbnail
request outside the scope is recorded (outcome "not found"), since that is a probe, not a look.
"""

import secrets
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db.models import Count, Q
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from diagnostics import deid, viewing
from diagnostics.dicom import MONOCHROME
from diagnostics.models import AIReading, Instance, Series, Study
from diagnostics.selectors import instances_visible, series_visible, studies_visible
from diagnostics.streaming import streamed
from hospitals.audit import Action, Outcome, audit_not_found, audit_record
from hospitals.models import Staff
from hospitals.scoping import access_record, request_scope

Status = Instance.Status
# Windows in Hounsfield units (center, width), offered for CT values.
PRESETS = (("lung", -600, 1500), ("bone", 300, 1500), ("soft", 40, 400), ("abdomen", 60, 400), ("brain", 40, 80))
# A frame's bytes never change (the file behind an instance is fixed by its hash), so the browser keeps them;
# "private" keeps them out of shared caches, and Vary: Cookie makes a browser that another user signs in to
# ask the server again, where the scope is checked.
FRAME_CACHE_SECONDS = 24 * 3600


def _presets() -> list[dict[str, Any]]:
    names = {
        "lung": _("Lung"),
        "bone": _("Bone"),
        "soft": _("Soft tissue"),
        "abdomen": _("Abdomen"),
        "brain": _("Brain"),
    }
    return [{"key": key, "name": names[key], "center": center, "width": width} for key, center, width in PRESETS]


def _study(request: HttpRequest, pk: int, action: str) -> Study:
    try:
        return access_record(studies_visible(request_scope(request)).select_related("patient"), pk)
    except Http404:
        raise audit_not_found(request, action, "diagnostics.study", pk) from None


def _instance(request: HttpRequest, pk: int) -> Instance:
    try:
        return access_record(instances_visible(request_scope(request)), pk)
    except Http404:
        raise audit_not_found(request, Action.VIEW, "diagnostics.instance", pk) from None


def _series(request: HttpRequest, pk: int) -> Series:
    try:
        return access_record(series_visible(request_scope(request)).select_related("study"), pk)
    except Http404:
        raise audit_not_found(request, Action.VIEW, "diagnostics.series", pk) from None


def _series_rows(study: Study) -> list[Series]:
    return list(
        study.series.annotate(
            total=Count("instances"),
            ready=Count("instances", filter=Q(instances__status=Status.READY)),
            failed=Count("instances", filter=Q(instances__status=Status.FAILED)),
        ).order_by("number", "pk")
    )


def _texts() -> dict[str, str]:
    """Sentences the script shows, translated here (the script has no catalogue of its own)."""
    return {
        "loading": _("Loading image…"),
        "loading_series": _("Loading the series…"),
        "position": _("Image %(image)s of %(images)s"),
        "frame": _("frame %(frame)s of %(frames)s"),
        "queued": _("This image is waiting to be processed; it appears here by itself when it is ready."),
        "processing": _("This image is being processed; it appears here by itself when it is ready."),
        "failed": _("This image could not be processed: %(reason)s"),
        "no_pixels": _("This object has no image to show (it holds no pixel data)."),
        "load_error": _(
            "The image could not be loaded (%(reason)s). Check the connection; it is tried again when you come "
            "back to it."
        ),
        "series_error": _("The series could not be loaded (%(reason)s). Reload the page to try again."),
        "buffering": _("Loading frames: %(loaded)s of %(frames)s"),
        "play": _("Play"),
        "pause": _("Pause"),
        "no_spacing": _(
            "No measurement: this image does not record its pixel spacing (calibration), so a length in "
            "millimetres cannot be known."
        ),
        "measure_hint": _("Drag across the image to measure a length."),
        "length": _("%(mm)s mm"),
        "no_presets": _("The presets are windows in Hounsfield units, for CT images only."),
        "jpeg_window": _("(display values 0–255)"),
        "empty": _("This series has no images yet."),
        "heatmap_none": _("The AI gave no heat map for this image."),
    }


def _page(
    request: HttpRequest, study: Study, *, refusal: str = "", offer_rest: bool = False, status: int = 200
) -> HttpResponse:
    series = _series_rows(study)
    asked = request.GET.get("series", "")
    current = next((s for s in series if str(s.pk) == asked), series[0] if series else None)
    first = current.instances.order_by("number", "pk").first() if current is not None else None
    hints = viewing.instance_hints(first) if first is not None and first.status == Status.READY else None
    spacing = first.pixel_spacing.replace("\\", " × ") if first is not None and first.pixel_spacing else ""
    readings = _ai_readings(study)
    context = {
        "study": study,
        "patient": study.patient,
        "series": series,
        "current": current,
        "first": first,
        "hints": hints,
        "spacing": spacing,
        "presets": _presets(),
        "texts": _texts(),
        "name_differs": _name_differs(study),
        "burn_in_prone": any(s.modality in deid.BURN_IN_PRONE for s in series),
        "refusal": refusal,
        "offer_rest": offer_rest,
        "ai_readings": readings,
        "ai_heatmaps": any(reading.heatmap for reading in readings),
        "can_decide": request_scope(request).role == Staff.Role.SPECIALIST,
    }
    return render(request, "diagnostics/viewer.html", context, status=status)


def _ai_readings(study: Study) -> list[AIReading]:
    """The AI models' readings of the study's images (a second reader, shown beside the header)."""
    return list(
        AIReading.objects.filter(instance__series__study=study)
        .select_related("model", "instance__series")
        .prefetch_related("findings__decided_by")
        .order_by("instance__series__number", "instance__number", "instance_id", "model__name")
    )


def _name_differs(study: Study) -> bool:
    """Whether the name in the images' header disagrees with the platform's record (a filing mistake shows)."""
    patient = study.patient
    header = [part.strip().casefold() for part in study.dicom_patient_name.split("^")[:3]]
    record = [patient.family_name.casefold(), patient.given_name.casefold(), patient.patronymic.casefold()]
    return any(part and part != known for part, known in zip(header, record, strict=False))


@require_GET
@login_required
def viewer(request: HttpRequest, pk: int) -> HttpResponse:
    study = _study(request, pk, Action.VIEW)
    audit_record(request=request, action=Action.VIEW, obj=study, patient_id=study.patient_id, detail="image viewer")
    return _page(request, study)


@require_GET
@login_required
def series_data(request: HttpRequest, pk: int) -> JsonResponse:
    """A series and its images, with what the script needs to show each (kind, window, frame rate)."""
    series = _series(request, pk)
    audit_record(
        request=request, action=Action.VIEW, obj=series, patient_id=series.study.patient_id, detail="image viewer"
    )
    ordered = series.instances.order_by("number", "pk").prefetch_related("ai_readings__model")
    instances = [_instance_json(instance) for instance in ordered]
    data = {
        "id": series.pk,
        "study": series.study_id,
        "modality": series.modality,
        "body_part": series.body_part,
        "description": series.description,
        "number": series.number,
        "instances": instances,
    }
    response = JsonResponse(data)
    patch_cache_control(response, private=True, no_cache=True)
    return response


def _instance_json(instance: Instance) -> dict[str, Any]:
    ready = instance.status == Status.READY
    hints = viewing.instance_hints(instance) if ready else None
    spacing = [float(v) for v in instance.pixel_spacing.split("\\")] if instance.pixel_spacing else None
    kind = hints.kind if hints is not None else None
    if ready and hints is not None and not instance.previews:
        kind = None  # an object without pixel data (a report, a presentation state)
    frames_url = reverse("viewer:frame_jpeg", args=[instance.pk, 1]).removesuffix("1.jpg")
    return {
        "id": instance.pk,
        "number": instance.number,
        "status": instance.status,
        "error": instance.error,
        "rows": instance.rows,
        "columns": instance.columns,
        # The pipeline rendered one JPEG per frame it could decode; raw values exist for every frame.
        "frames": (instance.frames if kind == viewing.RAW else instance.previews) if kind else instance.frames,
        "photometric": instance.photometric,
        "spacing": spacing,
        "kind": kind,
        "frames_url": frames_url,
        "heatmaps": [
            {"url": reverse("ai:heatmap", args=[reading.pk]), "model": str(reading.model)}
            for reading in instance.ai_readings.all()
            if reading.heatmap
        ],
        **(hints.as_json() if hints is not None else {}),
    }


def _conditional(request: HttpRequest, etag: str) -> HttpResponseNotModified | None:
    asked = request.headers.get("If-None-Match", "")
    return HttpResponseNotModified() if etag in [tag.strip() for tag in asked.split(",")] else None


def _frame_cache(response: HttpResponse, etag: str) -> HttpResponse:
    response["ETag"] = etag
    patch_cache_control(response, private=True, max_age=FRAME_CACHE_SECONDS)
    patch_vary_headers(response, ["Cookie"])
    return response


def _stored(name: str) -> bytes:
    try:
        with default_storage.open(name, "rb") as stored:
            return stored.read()
    except (FileNotFoundError, OSError):
        raise Http404 from None


@require_GET
@login_required
def frame_jpeg(request: HttpRequest, pk: int, frame: int) -> HttpResponse:
    """Frame `frame` (from 1) as the pipeline rendered it."""
    instance = _instance(request, pk)
    if instance.status != Status.READY or not 1 <= frame <= instance.previews:
        raise Http404
    etag = f'"{instance.sha256[:40]}-{frame}-jpeg"'
    unchanged = _conditional(request, etag)
    if unchanged is not None:
        return _frame_cache(unchanged, etag)
    return _frame_cache(HttpResponse(_stored(instance.preview_name(frame)), content_type="image/jpeg"), etag)


@require_GET
@login_required
def frame_raw(request: HttpRequest, pk: int, frame: int) -> HttpResponse:
    """Frame `frame` (from 1) of a monochrome image as its values after the modality LUT (rescale slope and
    intercept): little-endian, type in X-Pixel-Type, integer rows as left-neighbour differences
    (X-Pixel-Filter: sub), gzipped when the client accepts it."""
    instance = _instance(request, pk)
    if instance.status != Status.READY or instance.photometric not in MONOCHROME or not 1 <= frame <= instance.frames:
        raise Http404
    gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    etag = f'"{instance.sha256[:40]}-{frame}-raw{"-gz" if gzip else ""}"'
    unchanged = _conditional(request, etag)
    if unchanged is not None:
        return _frame_cache(unchanged, etag)
    try:
        with default_storage.open(instance.file.name, "rb") as stored:
            values = viewing.frame_values(stored, frame - 1)
    except (FileNotFoundError, ValueError, IndexError):
        raise Http404 from None
    body, dtype = viewing.values_encode(values)
    response = HttpResponse(viewing.gzipped(body) if gzip else body, content_type="application/octet-stream")
    if gzip:
        response["Content-Encoding"] = "gzip"
    response["X-Pixel-Type"] = dtype
    response["X-Pixel-Filter"] = "none" if dtype == "float32" else "sub"
    response["X-Rows"], response["X-Columns"] = str(values.shape[0]), str(values.shape[-1])
    patch_vary_headers(response, ["Accept-Encoding"])
    return _frame_cache(response, etag)


@require_GET
@login_required
def series_thumbnail(request: HttpRequest, pk: int) -> HttpResponse:
    series = _series(request, pk)
    instance = series.instances.filter(status=Status.READY, previews__gt=0).order_by("number", "pk").first()
    if instance is None:
        raise Http404
    etag = f'"{instance.sha256[:40]}-thumb"'
    unchanged = _conditional(request, etag)
    if unchanged is not None:
        return _frame_cache(unchanged, etag)
    return _frame_cache(HttpResponse(_stored(instance.thumbnail_name), content_type="image/jpeg"), etag)


@require_POST
@login_required
def export(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The study de-identified, as a zip streamed while it is made (for teaching cases)."""
    study = _study(request, pk, Action.EXPORT)
    plan = deid.study_export_plan(study=study)
    try:
        deid.plan_check(plan, without_burned_in=request.POST.get("without_burned_in") == "1")
    except deid.ExportRefused as refusal:
        audit_record(
            request=request,
            action=Action.EXPORT,
            outcome=Outcome.DENIED,
            obj=study,
            patient_id=study.patient_id,
            detail=f"de-identified export refused: {len(plan.burned_in)} images with burned-in annotation",
        )
        return _page(
            request, study, refusal=str(refusal), offer_rest=bool(plan.burned_in and plan.included), status=409
        )
    audit_record(
        request=request,
        action=Action.EXPORT,
        obj=study,
        patient_id=study.patient_id,
        detail=(
            f"de-identified zip: {len(plan.included)} images; left out {len(plan.burned_in)} with burned-in "
            f"annotation, {len(plan.unreadable)} unreadable"
        ),
    )
    response = StreamingHttpResponse(
        streamed(request, deid.study_export_stream(plan=plan)), content_type="application/zip"
    )
    # No record number or date in the name: the file is meant to travel.
    response["Content-Disposition"] = f'attachment; filename="teaching-case-{secrets.token_hex(4)}.zip"'
    patch_cache_control(response, private=True, no_store=True)
    return response
