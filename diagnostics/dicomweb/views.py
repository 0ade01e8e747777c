"""DICOMweb over HTTP: thin DRF views for STOW-RS, QIDO-RS and WADO-RS.

The API's rules apply: a browser session (with CSRF, and the second factor where the role needs it) or an
API token ("Authorization: Token <key>", no CSRF); errors as {"code", "detail"}. Media types are
negotiated here, not by DRF, since DICOMweb's (multipart/related with a `type`) are beyond its renderers.
Every read is audited once per request; every stored instance once.
"""

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.request import MediaType
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.http import parse_header_parameters
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, DataAndFiles
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from diagnostics.dicomweb import qido, stow, wado
from diagnostics.dicomweb.dicomjson import Links
from diagnostics.dicomweb.multipart import (
    MultipartInvalid,
    TooManyParts,
    boundary_new,
    multipart_write,
    parts_read,
    related_type,
)
from diagnostics.dicomweb.selectors import access_instance, access_series, access_study, instances_of, uid_checked
from diagnostics.models import Instance, Series, Study
from diagnostics.streaming import streamed
from hospitals.audit import Action, audit_record
from hospitals.scoping import Scope, request_scope

DICOM_JSON = "application/dicom+json"


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class _ServerNegotiates(BaseContentNegotiation):
    """Errors are JSON whatever the Accept header says; the views negotiate their own media types."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type

    def select_parser(self, request: Request, parsers: list[BaseParser]) -> BaseParser:
        return parsers[0]


class _BodyLeftUnread(BaseParser):
    """The CSRF check of a session's POST asks for the form fields: there are none, and the body (a whole
    study, perhaps) stays unread for the STOW view to read part by part."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> DataAndFiles:
        return DataAndFiles({}, {})


class DicomWebView(APIView):
    renderer_classes = [JSONRenderer]
    parser_classes = [_BodyLeftUnread]
    content_negotiation_class = _ServerNegotiates
    schema = None  # PS3.18 is the description; the OpenAPI schema is the /api/ one's
    level = qido.STUDY  # set per URL by as_view(level=...)

    def scope(self) -> Scope:
        return request_scope(self.request._request)

    def links(self) -> Links:
        return Links(self.request.build_absolute_uri(reverse("dicomweb:studies")).removesuffix("/studies"))

    def audit(self, action: str, obj: Study | Series | Instance, study: Study, detail: str = "") -> None:
        audit_record(
            request=self.request._request,
            user=self.request.user,
            action=action,
            obj=obj,
            patient_id=study.patient_id,
            detail=detail,
        )


# Media types.


def _accepted(request: HttpRequest) -> list[MediaType]:
    """What the client accepts: the `accept` query parameter (PS3.18 8.3.3.1; an <img> cannot send
    headers), else the Accept header."""
    given = request.GET.get("accept", "")
    if given:
        return [MediaType(token) for token in given.split(",") if token.strip()]
    return list(request.accepted_types)


def _accepts(request: HttpRequest, media_type: str, part_type: str | None = None) -> bool:
    """Whether the client accepts `media_type` (for multipart/related, with parts of `part_type`).
    Transfer syntaxes are not negotiated: files go as stored, frames as native little endian."""
    main, sub = media_type.split("/")
    for accepted in _accepted(request):
        if accepted.main_type not in ("*", main) or accepted.sub_type not in ("*", sub):
            continue
        wanted = accepted.params.get("type", "*/*").lower() if accepted.sub_type == sub else "*/*"
        if part_type is None or wanted in ("*/*", part_type, part_type.split("/")[0] + "/*"):
            return True
    return False


def _require(request: HttpRequest, media_type: str, part_type: str | None = None) -> None:
    if not _accepts(request, media_type, part_type):
        offered = f'{media_type}; type="{part_type}"' if part_type else media_type
        raise exceptions.NotAcceptable(
            _("This resource is available as %(offered)s only; the request's Accept header excludes it.")
            % {"offered": offered}
        )


def _require_json(request: HttpRequest) -> None:
    if not _accepts(request, "application/json"):
        _require(request, DICOM_JSON)


def _multipart(
    request: HttpRequest, part_type: str, parts: Iterable[tuple[str, Iterable[bytes]]]
) -> StreamingHttpResponse:
    boundary = boundary_new()
    return StreamingHttpResponse(
        streamed(request, multipart_write(parts, boundary), thread_sensitive=False),
        content_type=related_type(part_type, boundary),
    )


def _dicom_json(body: Any, status_code: int = 200) -> HttpResponse:
    return HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
        status=status_code,
        content_type=DICOM_JSON,
    )


# STOW-RS.


def _body_file(request: HttpRequest) -> BinaryIO:
    """The request body as a file that can be read twice (find the parts, then store them): in memory up to
    FILE_UPLOAD_MAX_MEMORY_SIZE, past it on disk. Django's ASGI handler has already spooled it so: that
    spool is used as it is. Anything else (WSGI) is copied into one."""
    stream = getattr(request, "_stream", None)
    if stream is not None and getattr(stream, "seekable", lambda: False)() and stream.tell() == 0:
        return stream
    spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115
    shutil.copyfileobj(request, spool, 1024 * 1024)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def _stow(view: DicomWebView, study_uid: str | None) -> HttpResponse:
    request = view.request._request
    scope = view.scope()
    if not scope.has_patients or scope.hospital_id is None:
        raise exceptions.PermissionDenied(_("Images are filed by the clinicians and specialists of a hospital."))
    encodings = [e.strip().lower() for e in request.META.get("HTTP_CONTENT_ENCODING", "").split(",") if e.strip()]
    if any(encoding != "identity" for encoding in encodings):
        raise exceptions.UnsupportedMediaType(
            ", ".join(encodings),
            _(
                "Compressed request bodies (Content-Encoding: %(encoding)s) are not accepted; send the parts "
                "uncompressed (the images inside may still use a compressed transfer syntax)."
            )
            % {"encoding": ", ".join(encodings)},
        )
    media_type, params = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
    if media_type != "multipart/related" or params.get("type", "application/dicom").lower() != "application/dicom":
        raise exceptions.UnsupportedMediaType(
            media_type,
            _('Send the images as multipart/related; type="application/dicom", one DICOM file per part.'),
        )
    if not params.get("boundary"):
        raise exceptions.ParseError(_("The Content-Type names no boundary, so the parts cannot be told apart."))
    body = _body_file(request)
    try:
        parts = parts_read(body, params["boundary"], limit=stow.MAX_PARTS)
    except TooManyParts as exc:
        raise TooLarge(str(exc)) from None
    except MultipartInvalid as exc:
        raise exceptions.ParseError(str(exc)) from None
    if not parts:
        raise exceptions.ParseError(_("The request holds no images."))
    code, response = stow.parts_store(
        request=request,
        body=body,
        parts=parts,
        hospital_id=scope.hospital_id,
        user=view.request.user,
        study_uid=uid_checked(study_uid) if study_uid else None,
        links=view.links(),
    )
    return _dicom_json(response, code)


# QIDO-RS.


class Search(DicomWebView):
    """GET .../studies, .../series, .../instances (within a study or series, or across all)."""

    def get(self, request: Request, study: str | None = None, series: str | None = None) -> HttpResponse:
        _require_json(request._request)
        scope = self.scope()
        found_study = found_series = None
        if series is not None and study is not None:
            found_series = access_series(scope, study, series)
            found_study = found_series.study
        elif study is not None:
            found_study = access_study(scope, study)
        try:
            query = qido.query_parse(request.query_params, self.level)
            results = qido.search(
                scope=scope, level=self.level, query=query, links=self.links(), study=found_study, series=found_series
            )
        except qido.QueryInvalid as exc:
            raise exceptions.ParseError(str(exc)) from None
        audit_record(
            request=request._request,
            user=request.user,
            action=Action.LIST,
            object_type=f"diagnostics.{self.level}",
            patient_id=found_study.patient_id if found_study is not None else "",
            detail=f"QIDO-RS {request._request.GET.urlencode()}",
        )
        response = _dicom_json(results)
        notes = qido.notes(query, len(results))
        if notes:
            response["Warning"] = ", ".join(f'299 {request.get_host()} "{note}"' for note in notes)
        return response


class Studies(Search):
    """GET: search studies (QIDO-RS); POST: store instances (STOW-RS)."""

    def post(self, request: Request) -> HttpResponse:
        return _stow(self, None)


# WADO-RS.


class Retrieve(DicomWebView):
    """GET a study, series or instance as multipart/related; type="application/dicom"; POST to a study
    stores instances into it (STOW-RS)."""

    def get(
        self, request: Request, study: str, series: str | None = None, instance: str | None = None
    ) -> HttpResponseBase:
        _require(request._request, "multipart/related", "application/dicom")
        found, owner, instances = _target(self.scope(), study, series, instance)
        self.audit(Action.EXPORT, found, owner, detail=f"WADO-RS: {len(instances)} instance(s)")
        parts = (
            (f"application/dicom; transfer-syntax={one.transfer_syntax_uid}", wado.file_chunks(one.file))
            for one in instances
        )
        return _multipart(request._request, "application/dicom", parts)

    def post(self, request: Request, study: str) -> HttpResponse:
        return _stow(self, study)


def _target(
    scope: Scope, study: str, series: str | None, instance: str | None
) -> tuple[Study | Series | Instance, Study, list[Instance]]:
    """The object a WADO-RS path names, its study, and its instances."""
    if instance is not None and series is not None:
        found_instance = access_instance(scope, study, series, instance)
        return found_instance, found_instance.series.study, [found_instance]
    if series is not None:
        found_series = access_series(scope, study, series)
        return found_series, found_series.study, list(instances_of(study=found_series.study, series=found_series))
    found_study = access_study(scope, study)
    return found_study, found_study, list(instances_of(study=found_study))


class Metadata(DicomWebView):
    """GET .../metadata: the headers as a DICOM JSON array, pixel data left out."""

    def get(
        self, request: Request, study: str, series: str | None = None, instance: str | None = None
    ) -> HttpResponseBase:
        _require_json(request._request)
        found, owner, instances = _target(self.scope(), study, series, instance)
        self.audit(Action.VIEW, found, owner, detail=f"WADO-RS metadata: {len(instances)} instance(s)")

        def pieces() -> Iterator[bytes]:
            yield b"["
            for number, one in enumerate(instances):
                yield (b"," if number else b"") + json.dumps(wado.metadata(one), ensure_ascii=False).encode()
            yield b"]"

        return StreamingHttpResponse(
            streamed(request._request, pieces(), thread_sensitive=False), content_type=DICOM_JSON
        )


class Frames(DicomWebView):
    """GET .../instances/{i}/frames/1,2,3: the frames' decoded pixels, native little endian."""

    def get(self, request: Request, study: str, series: str, instance: str, frames: str) -> HttpResponseBase:
        _require(request._request, "multipart/related", "application/octet-stream")
        found = access_instance(self.scope(), study, series, instance)
        try:
            numbers = wado.frame_numbers(frames, found.frames)
        except wado.FrameUnavailable as exc:
            raise exceptions.ParseError(str(exc)) from None
        pixels = wado.frames_native(found, numbers)
        try:
            first = next(pixels)  # a damaged image is answered with its reason, before the response starts
        except wado.FrameUnavailable as exc:
            raise exceptions.NotAcceptable(str(exc)) from None
        self.audit(Action.VIEW, found, found.series.study, detail=f"WADO-RS frames {frames[:100]}")
        content_type = f"application/octet-stream; transfer-syntax={wado.EXPLICIT_VR_LITTLE_ENDIAN}"

        def parts() -> Iterator[tuple[str, Iterable[bytes]]]:
            yield content_type, [first]
            for frame in pixels:
                yield content_type, [frame]

        return _multipart(request._request, "application/octet-stream", parts())


class Rendered(DicomWebView):
    """GET .../instances/{i}/rendered and .../frames/{n}/rendered: JPEG (default) or PNG, with `window`
    (center,width[,linear|linear-exact|sigmoid]), `viewport` (width,height) and `quality` (1-100)."""

    def get(self, request: Request, study: str, series: str, instance: str, frames: str | None = None) -> HttpResponse:
        media_type = next(
            (m for m in ("image/jpeg", "image/png") if _accepts(request._request, m)),
            None,
        )
        if media_type is None:
            raise exceptions.NotAcceptable(_("Rendered images are available as image/jpeg or image/png."))
        found = access_instance(self.scope(), study, series, instance)
        try:
            numbers = wado.frame_numbers(frames or "1", found.frames)
            if len(numbers) != 1:
                raise wado.FrameUnavailable(_("Ask for one frame at a time to have it rendered."))
            rendering = _rendering(request.query_params, media_type)
        except wado.FrameUnavailable as exc:
            raise exceptions.ParseError(str(exc)) from None
        try:
            image = wado.rendered(found, numbers[0], rendering)
        except wado.FrameUnavailable as exc:
            raise exceptions.NotAcceptable(str(exc)) from None
        self.audit(Action.VIEW, found, found.series.study, detail=f"WADO-RS rendered frame {numbers[0]}")
        return HttpResponse(image, content_type=media_type)


_FUNCTIONS = {"linear": "LINEAR", "linear-exact": "LINEAR_EXACT", "sigmoid": "SIGMOID"}


def _rendering(params: Any, media_type: str) -> wado.Rendering:
    window = viewport = None
    if params.get("window"):
        values = params["window"].split(",")
        try:
            center, width = float(values[0]), float(values[1])
            function = _FUNCTIONS[values[2].strip().lower() if len(values) > 2 else "linear"]
        except (ValueError, IndexError, KeyError):
            raise wado.FrameUnavailable(
                _(
                    "window must be center,width[,function] with function linear, linear-exact or sigmoid, "
                    "such as 40,400,linear."
                )
            ) from None
        window = (center, width, function)
    if params.get("viewport"):
        try:
            vw, vh = (int(v) for v in params["viewport"].split(","))
        except ValueError:
            vw = vh = 0
        if not (0 < vw <= wado.MAX_VIEWPORT and 0 < vh <= wado.MAX_VIEWPORT):
            raise wado.FrameUnavailable(
                _("viewport must be width,height in pixels, each from 1 to %(max)s, such as 512,512.")
                % {"max": wado.MAX_VIEWPORT}
            )
        viewport = (vw, vh)
    quality = 90
    if params.get("quality"):
        try:
            quality = int(params["quality"])
        except ValueError:
            quality = 0
        if not 1 <= quality <= 100:
            raise wado.FrameUnavailable(_("quality must be a number from 1 to 100."))
    return wado.Rendering(media_type=media_type, window=window, viewport=viewport, quality=quality)
