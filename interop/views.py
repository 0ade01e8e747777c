"""The FHIR R4 REST API: read, search (Bundle searchset with paging and _include) and the
CapabilityStatement; every error an OperationOutcome. Resource types come from `interop.resources`."""

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.api import FhirObservationView
from devices.auth import device_of
from hospitals.audit import audit_batch, audit_not_found, audit_record
from hospitals.models import AuditEntry
from hospitals.scoping import access_record, request_scope
from interop.resources import REGISTRY, ResourceType, SearchError, record_number_system
from patients.models import Patient

FHIR_JSON = "application/fhir+json"
SECURITY = "A signed-in session with its second factor, or 'Authorization: Token <key>'."
DEFAULT_COUNT = 50
MAX_COUNT = 200
# Parameters every search takes; the type's own come from the registry.
COMMON = {"_count", "_page", "_include", "_format"}


def outcome(diagnostics: str, *, code: str = "invalid", expression: str = "") -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def fhir_response(body: dict[str, Any], code: int = status.HTTP_200_OK) -> Response:
    if getattr(settings, "FHIR_VALIDATE_RESPONSES", False):
        validate(body)
    return Response(body, status=code, content_type=FHIR_JSON)


def validate(body: dict[str, Any]) -> None:
    """Check a body against the FHIR R4 models (fhir.resources R4B); raises on the first mismatch."""
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class(body["resourceType"]).model_validate(body)


class OutcomeErrors:
    """Every error, the framework's too (401, 404, 405), answered as an OperationOutcome."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Http404):
            exc = exceptions.NotFound(_("No such resource, or not one you may see."))
        response: Response = super().handle_exception(exc)  # type: ignore[misc]
        codes = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported"}
        detail = getattr(exc, "detail", "")
        response.data = outcome(str(detail), code=codes.get(response.status_code, "processing"))
        response.content_type = FHIR_JSON
        return response


class FhirView(OutcomeErrors, APIView):
    """Session (with second factor) or API token, as the rest of the API."""

    schema = None  # described by its own CapabilityStatement (/fhir/metadata), not the OpenAPI schema


def _type_or_404(name: str) -> ResourceType:
    resource = REGISTRY.get(name)
    if resource is None:
        raise exceptions.NotFound(_("The server does not serve the resource type “%(type)s”.") % {"type": name})
    return resource


def _audit_rows(request: HttpRequest, resource: ResourceType, rows: list[Any], action: str) -> None:
    if resource.patient_of is None:
        return
    with audit_batch():
        for row in rows:
            audit_record(
                request=request,
                action=action,
                obj=row,
                object_type=f"fhir.{resource.name.lower()}",
                patient_id=resource.patient_of(row),
            )


class ReadView(FhirView):
    def get(self, request: Request, type_name: str, pk: str) -> Response:
        resource = _type_or_404(type_name)
        try:
            row = access_record(resource.queryset(request_scope(request._request)), pk)
        except Http404:
            if resource.patient_of is not None:
                audit_not_found(request._request, AuditEntry.Action.VIEW, f"fhir.{type_name.lower()}", pk)
            raise
        _audit_rows(request._request, resource, [row], AuditEntry.Action.VIEW)
        return fhir_response(resource.to_json(row))


class TypeView(FhirView):
    def get(self, request: Request, type_name: str) -> Response:
        resource = _type_or_404(type_name)
        params = request.query_params
        unknown = sorted(set(params) - COMMON - set(resource.search))
        if unknown:
            return self._bad(_("Unsupported search parameter: %(name)s.") % {"name": ", ".join(unknown)}, unknown[0])
        count = self._int(params.get("_count"), DEFAULT_COUNT)
        page = self._int(params.get("_page"), 1)
        if count is None or page is None or page < 1:
            return self._bad(_("_count and _page take a positive whole number."), "_count")
        count = max(1, min(count, MAX_COUNT))
        includes = params.getlist("_include")
        for include in includes:
            if include not in resource.includes:
                return self._bad(_("Unsupported _include: %(value)s.") % {"value": include}, "_include")
        rows: QuerySet[Any] = resource.queryset(request_scope(request._request))
        for name, (_kind, build) in resource.search.items():
            for value in params.getlist(name):
                try:
                    condition: Q = build(value)
                except SearchError:
                    return self._bad(
                        _("The value of %(name)s is not understood: %(value)s.") % {"name": name, "value": value}, name
                    )
                rows = rows.filter(condition)
        window = list(rows[(page - 1) * count : page * count + 1])
        more = len(window) > count
        window = window[:count]
        _audit_rows(request._request, resource, window, AuditEntry.Action.LIST)
        entries = [self._entry(request, resource.name, resource.to_json(row), "match") for row in window]
        for include in includes:
            entries += self._included(request, resource, include, window)
        links = [{"relation": "self", "url": self._page_url(request, page)}]
        if more:
            links.append({"relation": "next", "url": self._page_url(request, page + 1)})
        if page > 1:
            links.append({"relation": "previous", "url": self._page_url(request, page - 1)})
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "meta": {"lastUpdated": timezone.now().isoformat()},
            "link": links,
            "entry": entries,
        }
        if page == 1 and not more:
            bundle["total"] = len(window)
        return fhir_response(bundle)

    def _included(
        self, request: Request, resource: ResourceType, include: str, rows: list[Any]
    ) -> list[dict[str, Any]]:
        spec = resource.includes[include]
        target = REGISTRY[spec.target]
        ids = {getattr(row, spec.attribute) for row in rows} - {None}
        found = list(target.queryset(request_scope(request._request)).filter(pk__in=ids))
        _audit_rows(request._request, target, found, AuditEntry.Action.VIEW)
        return [self._entry(request, target.name, target.to_json(row), "include") for row in found]

    @staticmethod
    def _entry(request: Request, type_name: str, body: dict[str, Any], mode: str) -> dict[str, Any]:
        return {
            "fullUrl": request.build_absolute_uri(f"/fhir/{type_name}/{body['id']}"),
            "resource": body,
            "search": {"mode": mode},
        }

    @staticmethod
    def _page_url(request: Request, page: int) -> str:
        query = [(key, value) for key, values in request.query_params.lists() for value in values if key != "_page"]
        query.append(("_page", str(page)))
        return request.build_absolute_uri(f"{request.path}?{urlencode(query)}")

    @staticmethod
    def _int(raw: str | None, default: int) -> int | None:
        if raw is None:
            return default
        return int(raw) if raw.isdigit() else None

    @staticmethod
    def _bad(message: str, expression: str) -> Response:
        return fhir_response(outcome(message, code="not-supported", expression=expression), status.HTTP_400_BAD_REQUEST)


class MetadataView(FhirView):
    permission_classes: list[Any] = []  # the CapabilityStatement is public, as FHIR clients expect

    def get(self, request: Request) -> Response:
        return fhir_response(capability_statement(request.build_absolute_uri("/fhir")))


def capability_statement(base: str) -> dict[str, Any]:
    rest_resources = []
    for resource in REGISTRY.values():
        entry: dict[str, Any] = {
            "type": resource.name,
            "documentation": resource.profile_doc,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": name, "type": kind} for name, (kind, _build) in resource.search.items()]
            + [{"name": "_count", "type": "number"}],
        }
        if resource.includes:
            entry["searchInclude"] = list(resource.includes)
        if resource.name == "Observation":
            entry["interaction"].append({"code": "create"})
        rest_resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-28",
        "kind": "instance",
        "software": {"name": "M-Hospital"},
        "implementation": {"description": "M-Hospital FHIR R4 API", "url": base},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "A signed-in session with its second factor, or 'Authorization: Token <key>'."
                },
                "resource": rest_resources,
            }
        ],
    }


class ObservationCreateView(OutcomeErrors, FhirObservationView):
    """POST /fhir/Observation with a device token: the device FHIR ingest (and so the lab pipeline: flags,
    critical alerts), after checking that the body is an Observation about a patient of the device's hospital.
    A `subject.reference` to a patient elsewhere is refused, and nothing is stored."""

    def post(self, request: Request) -> Response:
        device = device_of(request)
        try:
            body = request.data
        except ParseError as exc:
            return fhir_response(outcome(str(exc.detail), code="structure"), status.HTTP_400_BAD_REQUEST)
        if not isinstance(body, dict) or body.get("resourceType") != "Observation":
            found = body.get("resourceType") if isinstance(body, dict) else None
            message = _("Send an Observation here; the body's resourceType is “%(type)s”.") % {"type": found}
            return fhir_response(outcome(message, expression="resourceType"), status.HTTP_400_BAD_REQUEST)
        refused = _foreign_subject(body, device.hospital_id)
        if refused:
            return fhir_response(
                outcome(refused, code="not-found", expression="Observation.subject"), status.HTTP_400_BAD_REQUEST
            )
        return super().post(request)


def _foreign_subject(body: dict[str, Any], hospital_id: int) -> str:
    """Why the Observation's subject is not a patient of the hospital (empty if it may be). A reference
    `Patient/<id>` of the hospital is turned into the record number identifier the device ingest reads."""
    subject = body.get("subject")
    if not isinstance(subject, dict):
        return ""
    identifier = subject.get("identifier")
    system = identifier.get("system") if isinstance(identifier, dict) else None
    if system and system.startswith("urn:mhospital:hospital:") and system != record_number_system(hospital_id):
        return _("Observation.subject names a record number of another hospital.")
    reference = subject.get("reference")
    if not reference:
        return ""
    tail = str(reference).removeprefix("Patient/")
    patients = Patient.objects.filter(hospital_id=hospital_id)
    patient = patients.filter(pk=int(tail)).first() if tail.isdigit() else None
    if patient is None:
        return _("Observation.subject %(reference)s is not a patient of the device's hospital.") % {
            "reference": reference
        }
    subject["identifier"] = {"system": record_number_system(hospital_id), "value": patient.record_number}
    return ""


_observation_create = ObservationCreateView.as_view()
_type_search = TypeView.as_view()


@csrf_exempt
def type_view(request: HttpRequest, type_name: str) -> HttpResponseBase:
    """GET searches any served type; POST creates an Observation (devices only)."""
    if request.method == "POST" and type_name == "Observation":
        return _observation_create(request)
    return _type_search(request, type_name=type_name)
